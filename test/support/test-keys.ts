// Keys files for tests: named keys of each role, written as the operator
// would (hashes only), and the keys themselves for the test's clients.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { hashOfKey, newKey } from "../../contracts/runtime/auth/keys-file.js";
import type { Role } from "../../contracts/runtime/auth/roles.js";

export interface KeySpec {
  role: Role;
  /** More of the key's YAML flow mapping, e.g. `rate-limit: { per-second: 1, burst: 2 }`. */
  extra?: string;
}

/** A fresh random key per name, and the keys file (YAML) that accepts them. */
export function testKeys<N extends string>(specs: Record<N, KeySpec>): { keys: Record<N, string>; yaml: string } {
  const keys = {} as Record<N, string>;
  const lines = ["keys:"];
  for (const [name, spec] of Object.entries(specs) as [N, KeySpec][]) {
    keys[name] = newKey();
    lines.push(`  ${name}: { role: ${spec.role}, hash: "${hashOfKey(keys[name])}"${spec.extra ? `, ${spec.extra}` : ""} }`);
  }
  return { keys, yaml: `${lines.join("\n")}\n` };
}

export function writeKeysFile(dir: string, yaml: string, name = "keys.yaml"): string {
  const path = join(dir, name);
  writeFileSync(path, yaml);
  return path;
}

export const bearer = (key: string): Record<string, string> => ({ Authorization: `Bearer ${key}` });
