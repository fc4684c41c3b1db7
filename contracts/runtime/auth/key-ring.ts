import { readFileSync } from "node:fs";
import type { Logger } from "../logger.js";
import { identityOf } from "../api-key.js";
import { parseKeysFile, sha256Hex, type KeyEntry } from "./keys-file.js";
import { EVERY_ROLE, type Principal } from "./roles.js";

export interface KeyRingOptions {
  /** --keys-file: named keys with roles, as sha256 hashes. */
  file?: string;
  /** LLORCH_API_KEY: the one-key shortcut, a key that holds every role. */
  sharedKey?: string;
}

/**
 * The keys a process accepts, and the one owner of them: the keys file's
 * entries plus the LLORCH_API_KEY shortcut, looked up by the sha256 of what
 * a caller presents (so the process never holds a file key in clear).
 * `reload()` (on SIGHUP) swaps in the file's new contents whole, or keeps
 * the old ones and says why.
 */
export class KeyRing {
  private byHash: ReadonlyMap<string, Principal>;

  private constructor(
    private readonly options: KeyRingOptions,
    entries: KeyEntry[],
  ) {
    this.byHash = this.principals(entries);
  }

  /** Throws when the keys file cannot be read or is not valid: a process must not start with keys it cannot know. */
  static load(options: KeyRingOptions): KeyRing {
    return new KeyRing(options, options.file === undefined ? [] : readKeysFile(options.file));
  }

  /** True when callers must present a key: a keys file or LLORCH_API_KEY is set. */
  get required(): boolean {
    return this.options.file !== undefined || this.options.sharedKey !== undefined;
  }

  get size(): number {
    return this.byHash.size;
  }

  /** Whose key this is, or undefined when it is no key of ours. */
  authenticate(presented: string): Principal | undefined {
    return this.byHash.get(sha256Hex(presented));
  }

  /** Reads the keys file again; a file that cannot be read or parsed leaves the keys as they were. */
  reload(logger: Logger): boolean {
    const file = this.options.file;
    if (file === undefined) return false;
    let entries: KeyEntry[];
    try {
      entries = readKeysFile(file);
    } catch (err) {
      const reason = (err as Error).message;
      logger.error(
        { event: "keys_reload_failed", keys_file: file, reason, keys: this.byHash.size },
        `${reason}; keeping the ${this.byHash.size} keys loaded before`,
      );
      return false;
    }
    this.byHash = this.principals(entries);
    logger.info(
      { event: "keys_reloaded", keys_file: file, keys: this.byHash.size, names: entries.map((e) => e.name) },
      `keys file ${file} reloaded: ${entries.length} keys`,
    );
    return true;
  }

  /** Reloads on every SIGHUP while installed (only with a keys file); returns the uninstall. */
  reloadOnSighup(logger: Logger): () => void {
    if (this.options.file === undefined) return () => {};
    const onHup = () => void this.reload(logger);
    process.on("SIGHUP", onHup);
    return () => process.off("SIGHUP", onHup);
  }

  private principals(entries: KeyEntry[]): Map<string, Principal> {
    const map = new Map<string, Principal>();
    for (const e of entries) {
      map.set(e.sha256, { identity: `key:${e.name}`, roles: new Set([e.role]), rateLimit: e.rateLimit, sessionBudgets: e.sessionBudgets });
    }
    const shared = this.options.sharedKey;
    // The shortcut keeps today's behaviour (every role) and today's name in logs, and wins over a file entry with its hash.
    if (shared !== undefined) map.set(sha256Hex(shared), { identity: identityOf(shared), roles: EVERY_ROLE });
    return map;
  }
}

function readKeysFile(file: string): KeyEntry[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read keys file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    return parseKeysFile(text);
  } catch (err) {
    throw new Error(`keys file ${file}: ${(err as Error).message}`, { cause: err });
  }
}
