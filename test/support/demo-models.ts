import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { demoModelGguf, type DemoModelOptions } from "../../workers/gguf/demo-model.js";

/**
 * Random-weight GGUF models generated into a temp dir for tests against the
 * real llama.cpp engine; nothing binary is committed.
 */
export class DemoModels {
  readonly dir = mkdtempSync(join(tmpdir(), "llorch-models-"));

  /** Writes a model and returns its path. */
  write(name: string, options: DemoModelOptions = {}): string {
    const path = join(this.dir, name);
    writeFileSync(path, Buffer.concat(demoModelGguf(options)));
    return path;
  }

  /** A file that is not a model at all, for failed loads. */
  writeBroken(name: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, Buffer.from("GGUF this is not a model"));
    return path;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
