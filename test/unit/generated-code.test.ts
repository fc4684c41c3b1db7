import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parse, stringify } from "yaml";
import { projectRoot } from "../../contracts/runtime/project-root.js";

const root = projectRoot();
const buf = join(root, "node_modules", ".bin", "buf");

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

test("generated code in contracts/gen is what `npm run gen` produces from proto/ (run it after editing a .proto)", (t) => {
  const out = mkdtempSync(join(tmpdir(), "llorch-gen-"));
  try {
    const template = parse(readFileSync(join(root, "buf.gen.yaml"), "utf8")) as { plugins: { out: string }[] };
    for (const p of template.plugins) p.out = out;
    const templatePath = join(out, "buf.gen.yaml");
    writeFileSync(templatePath, stringify(template));
    execFileSync(buf, ["generate", "--template", templatePath], { cwd: root, stdio: "pipe" });
    execFileSync(buf, ["build", "-o", join(out, "descriptors.binpb")], { cwd: root, stdio: "pipe" });
    rmSync(templatePath);

    const committed = join(root, "contracts", "gen");
    const fresh = filesUnder(out)
      .map((f) => relative(out, f))
      .sort();
    t.deepEqual(
      filesUnder(committed)
        .map((f) => relative(committed, f))
        .sort(),
      fresh,
      "same set of generated files",
    );
    for (const f of fresh) {
      t.true(readFileSync(join(out, f)).equals(readFileSync(join(committed, f))), `${f} is up to date`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("proto/ is clean under buf lint", (t) => {
  t.notThrows(() => execFileSync(buf, ["lint"], { cwd: root, stdio: "pipe" }));
});
