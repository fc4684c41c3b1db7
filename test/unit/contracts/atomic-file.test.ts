import test, { type ExecutionContext } from "ava";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { removeStaleTempFiles, tempPathFor, writeFileAtomic } from "../../../contracts/runtime/atomic-file.js";

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "llorch-atomic-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("writeFileAtomic replaces the file and leaves no temp files behind", async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, "f.json");
  await writeFileAtomic(target, "one");
  await writeFileAtomic(target, "two");
  t.is(await readFile(target, "utf8"), "two");
  t.deepEqual(await readdir(dir), ["f.json"]);
});

test("removeStaleTempFiles deletes only the target's own temp files", async (t) => {
  const dir = await tempDir(t);
  const target = path.join(dir, "index.json");
  await writeFile(tempPathFor(target), '{"torn');
  await writeFile(tempPathFor(target), "");
  await writeFile(path.join(dir, ".other.json.1.tmp"), "keep");
  await writeFile(path.join(dir, "index.json.bak"), "keep");
  t.is(await removeStaleTempFiles(target), 2);
  t.deepEqual((await readdir(dir)).sort(), [".other.json.1.tmp", "index.json.bak"]);
});
