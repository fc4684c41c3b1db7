import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/**
 * The repository root, found by walking up from this module. The same code
 * runs from source (tsx) and from dist/, and tsc does not copy non-TS assets
 * (OpenAPI YAML, the descriptor set), so assets are located from the root.
 */
export function projectRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name?: string }).name;
      if (name === "llama-orch") return (cached = dir);
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("llama-orch project root not found above " + import.meta.url);
    dir = parent;
  }
}
