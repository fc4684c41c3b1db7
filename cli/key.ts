// `llorch key NAME --role ROLE`: a new random key and the line that puts its
// hash in a keys file. The key is printed once and stored nowhere: the file
// holds only its sha256, so a leaked keys file grants nothing.
import { readFileSync } from "node:fs";
import { flagHelp, type FlagTable } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice } from "../contracts/runtime/flag-values.js";
import { hashOfKey, newKey } from "../contracts/runtime/auth/keys-file.js";
import { ROLES, type Role } from "../contracts/runtime/auth/roles.js";

export interface KeyOptions {
  role: Role;
  /** Hash the key given on stdin (e.g. today's LLORCH_API_KEY) instead of making a new one. */
  fromStdin: boolean;
}

export const KEY_FLAGS: FlagTable<KeyOptions> = [
  {
    name: "role",
    arg: "ROLE",
    help: `${ROLES.join(", ")}: client for the public API, admin for control-plane writes, worker for\nsidecars and core (default client)`,
    apply: (o, v, f) => (o.role = flagChoice(f, v, ROLES)),
  },
  {
    name: "from-stdin",
    arg: "",
    help: "hash the key read from stdin instead of making a new one (prints only the keys-file line)",
    apply: (o, v, f) => (o.fromStdin = flagBoolean(f, v)),
  },
];

export const keyHelp = [
  "llorch key NAME [--role ROLE] — a new random key, and its line for a --keys-file",
  "",
  flagHelp(KEY_FLAGS, 16),
  "",
  "Give the key to its holder (it is shown once); put the line under keys: in the keys file of every",
  "process that must accept it, then send those processes SIGHUP. Example keys file:",
  "  keys:",
  '    alice: { role: client, hash: "sha256:…", rate-limit: { per-second: 5, burst: 10 } }',
  '    bob:   { role: client, hash: "sha256:…", session-budgets: { tokens: 100000, time-ms: 600000, cost: 2.5 } }',
  '    ops:   { role: admin,  hash: "sha256:…" }',
  '    gpu-1: { role: worker, hash: "sha256:…" }',
  "",
].join("\n");

/** The keys-file line for a key (YAML flow mapping, to go under `keys:`). */
export function keysFileLine(name: string, role: Role, key: string): string {
  return `  ${name}: { role: ${role}, hash: "${hashOfKey(key)}" }`;
}

export function runKeyCommand(positionals: string[], options: KeyOptions, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  if (positionals.length !== 1) throw new Error(`one NAME, got ${positionals.length}`);
  const name = positionals[0]!;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) throw new Error(`NAME must be letters, digits, ".", "_" or "-"`);
  if (options.fromStdin) {
    const key = readFileSync(0, "utf8").trim();
    if (key === "") throw new Error("no key on stdin");
    out(`${keysFileLine(name, options.role, key)}\n`);
    return;
  }
  const key = newKey();
  out(
    [
      `# the key of ${name} (role ${options.role}): give it to its holder; it is shown only now`,
      key,
      "# its line for the keys file, under keys:",
      keysFileLine(name, options.role, key),
      "",
    ].join("\n"),
  );
}
