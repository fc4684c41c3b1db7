import test from "ava";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";

const root = projectRoot();
const PRODUCTION = ["contracts", "core", "edge", "workers"];

function tsFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFilesUnder(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

test("no production module imports test code (checkers and fixtures live under test/)", (t) => {
  const offenders: string[] = [];
  for (const file of PRODUCTION.flatMap((d) => tsFilesUnder(join(root, d)))) {
    const source = readFileSync(file, "utf8");
    for (const [, specifier] of source.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)) {
      const target = relative(root, resolve(dirname(file), specifier!));
      if (target === "test" || target.startsWith("test/")) offenders.push(`${relative(root, file)} imports ${specifier}`);
    }
  }
  t.deepEqual(offenders, []);
});
