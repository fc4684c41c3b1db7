import test from "ava";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";

const root = projectRoot();

/**
 * Which top-level folders each layer may import. core, edge and workers meet
 * only in contracts/; cli/ is the one entry point that may know every layer;
 * nothing in production imports test code.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  contracts: ["contracts"],
  core: ["contracts", "core"],
  edge: ["contracts", "edge"],
  workers: ["contracts", "workers"],
  cli: ["contracts", "core", "edge", "workers", "cli"],
};

function tsFilesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === "gen" ? [] : tsFilesUnder(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/** Every relative import of a file, as the top-level folder it lands in. */
function importedLayers(file: string): { specifier: string; layer: string }[] {
  const source = readFileSync(file, "utf8");
  return [...source.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)].map(([, specifier]) => ({
    specifier: specifier!,
    layer: relative(root, resolve(dirname(file), specifier!)).split("/")[0]!,
  }));
}

function offendersOf(layer: string): string[] {
  const allowed = MAY_IMPORT[layer]!;
  return tsFilesUnder(join(root, layer)).flatMap((file) =>
    importedLayers(file)
      .filter((i) => !allowed.includes(i.layer))
      .map((i) => `${relative(root, file)} imports ${i.specifier}`),
  );
}

for (const layer of Object.keys(MAY_IMPORT)) {
  test(`${layer}/ imports only ${MAY_IMPORT[layer]!.join(", ")} (never test code)`, (t) => {
    t.deepEqual(offendersOf(layer), []);
  });
}
