// A model_ref made ready for an engine to load: its files on this machine
// (hf: and https: refs downloaded into the model cache by the provisioner,
// local files used where they are) and what its GGUF header says about the
// memory it needs. Progress goes to the caller, to the log (a line every few
// seconds) and to a terminal bar when stderr is one.
import { stat } from "node:fs/promises";
import { localPathOf, parseModelRef } from "../../contracts/model-ref.js";
import type { Logger } from "../../contracts/runtime/logger.js";
import { readModelMemory, type ModelMemory } from "../hardware/gguf-model-memory.js";
import type { Env } from "../provision/hub-settings.js";
import { progressLogger, terminalProgress, type TerminalStream } from "../provision/progress-display.js";
import { fanOut, type ProgressListener } from "../provision/progress.js";
import { provisionModel } from "../provision/provision-model.js";

export interface PreparedModel {
  ref: string;
  /** The file (or repository directory) the engine loads; undefined when the engine fetches the model itself. */
  path: string | undefined;
  /** "sha256:<hex>" when the bytes were hashed (downloaded, or checked against an expected digest). */
  digest: string | undefined;
  /** What the load asked the bytes to be, so a reload after idleness checks the same. */
  expectedDigest: string | undefined;
  /** Undefined when the memory need cannot be read (not a GGUF file, or no file at all). */
  memory: ModelMemory | undefined;
}

export interface PrepareOptions {
  expectedDigest?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface PreparerOptions {
  /** --model-cache. */
  cacheDir: string;
  /** What relative file refs resolve from. */
  baseDir: string;
  /** HF_ENDPOINT, HF_TOKEN, HF_HOME: read as the hub's own clients read them, never logged. */
  env: Env;
  logger: Logger;
  /** Where the progress bar is drawn, when it is a terminal; default process.stderr. */
  terminal?: TerminalStream;
  /** Provisioner tuning, for tests: backoff before a resumed download's first retry. */
  retryBaseDelayMs?: number;
}

export class ModelPreparer {
  constructor(private readonly options: PreparerOptions) {}

  /** Rejects with the provisioner's ProvisionError (its kind says why), or with the local file's error. */
  async prepare(ref: string, options: PrepareOptions = {}): Promise<PreparedModel> {
    const { expectedDigest } = options;
    const local = localPathOf(parseModelRef(ref), this.options.baseDir);
    // A local file is used in place and hashed only when a digest must be checked; the engine reads it anyway.
    if (local !== undefined && expectedDigest === undefined) {
      await stat(local).catch((err: NodeJS.ErrnoException) => {
        throw new Error(err.code === "ENOENT" ? `${local} does not exist` : `cannot read ${local}: ${err.message}`);
      });
      return { ref, path: local, digest: undefined, expectedDigest, memory: await memoryOf(local) };
    }
    const provisioned = await provisionModel(ref, {
      cacheDir: this.options.cacheDir,
      baseDir: this.options.baseDir,
      env: this.options.env,
      expectedSha256: expectedDigest,
      signal: options.signal,
      onProgress: fanOut(this.listeners(ref, options.onProgress)),
      ...(this.options.retryBaseDelayMs === undefined ? {} : { retryBaseDelayMs: this.options.retryBaseDelayMs }),
    });
    this.options.logger.info(
      {
        event: "model_provisioned",
        model_ref: ref,
        path: provisioned.path,
        source: provisioned.source,
        verified: provisioned.verified,
        size_bytes: provisioned.sizeBytes,
        sha256: provisioned.sha256,
      },
      `${ref} is at ${provisioned.path} (${provisioned.source}${provisioned.verified ? ", verified" : ""})`,
    );
    const path = provisioned.path;
    return {
      ref,
      path,
      digest: `sha256:${provisioned.sha256}`,
      expectedDigest,
      memory: provisioned.files ? undefined : await memoryOf(path),
    };
  }

  private listeners(ref: string, caller: ProgressListener | undefined): ProgressListener[] {
    const shown = [progressLogger(this.options.logger, ref), terminalProgress(this.options.terminal ?? process.stderr)];
    return caller ? [caller, ...shown] : shown;
  }
}

/** A GGUF's memory facts; undefined for anything else (the fit check then has nothing to go on). */
async function memoryOf(path: string): Promise<ModelMemory | undefined> {
  try {
    return await readModelMemory(path);
  } catch {
    return undefined;
  }
}
