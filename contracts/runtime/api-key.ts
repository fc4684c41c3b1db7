import { createHash } from "node:crypto";
import { isIP } from "node:net";
import type { FlagValues } from "./flag-table.js";

/** The environment variable every process reads its API key from (never a command-line flag: argv is world-readable). */
export const API_KEY_ENV = "LLORCH_API_KEY";

/**
 * A component's API key: LLORCH_API_KEY, else `api-key` in its config section
 * (which arrives among its flag values). There is deliberately no --api-key
 * flag: a command line is visible to every user of the machine.
 */
export function apiKeyFrom(flags: FlagValues): string | undefined {
  const fromEnv = process.env[API_KEY_ENV];
  if (fromEnv) return fromEnv;
  const fromFile = flags["api-key"];
  return typeof fromFile === "string" && fromFile !== "" ? fromFile : undefined;
}

/** The key a process presents to the processes it calls, when it is not LLORCH_API_KEY. */
export const OWN_KEY_ENV = "LLORCH_KEY";

/**
 * The key this process presents when it calls another one (core: to its
 * sidecars, a worker key; a sidecar: to core, a worker key; the edge: to core
 * for its own calls, a client key): LLORCH_KEY, else `key` in its config
 * section, else the API key.
 */
export function ownKeyFrom(flags: FlagValues): string | undefined {
  const fromEnv = process.env[OWN_KEY_ENV];
  if (fromEnv) return fromEnv;
  const fromFile = flags["key"];
  if (typeof fromFile === "string" && fromFile !== "") return fromFile;
  return apiKeyFrom(flags);
}

/** What logs say instead of a key: `token:<first 6 hex of sha256>`. */
export function identityOf(key: string): string {
  return `token:${createHash("sha256").update(key).digest("hex").slice(0, 6)}`;
}

export function bearerOf(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1] : undefined;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost". */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

/** Listening beyond loopback with no key would expose everything: refuse to start. */
export function assertSafeBind(host: string, keysRequired: boolean, what: string): void {
  if (!keysRequired && !isLoopback(host)) {
    throw new Error(
      `refusing to start ${what} on ${host} without an API key: give it --keys-file FILE or set ${API_KEY_ENV} (or api-key in the config file), or bind to 127.0.0.1`,
    );
  }
}
