import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeyRing } from "../../../contracts/runtime/auth/key-ring.js";
import { hashOfKey } from "../../../contracts/runtime/auth/keys-file.js";
import { mayAct } from "../../../contracts/runtime/auth/roles.js";
import { identityOf } from "../../../contracts/runtime/api-key.js";
import { logCapture } from "../../support/log-capture.js";

function keysFile(t: { teardown(fn: () => void): void }, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "llorch-keys-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "keys.yaml");
  writeFileSync(file, text);
  return file;
}

test("a presented key is known by its hash: its name, its role; the shared key holds every role", (t) => {
  const file = keysFile(
    t,
    `keys:\n  alice: { role: client, hash: "${hashOfKey("alice-key")}" }\n  w1: { role: worker, hash: "${hashOfKey("w-key")}" }\n`,
  );
  const ring = KeyRing.load({ file, sharedKey: "shared" });
  t.true(ring.required);
  const alice = ring.authenticate("alice-key")!;
  t.is(alice.identity, "key:alice");
  t.true(mayAct(alice, "client"));
  t.false(mayAct(alice, "admin"));
  t.false(mayAct(alice, "worker"));
  const worker = ring.authenticate("w-key")!;
  t.false(mayAct(worker, "client"), "a worker key is no client key");
  t.true(mayAct(worker, "worker"));
  const shared = ring.authenticate("shared")!;
  t.is(shared.identity, identityOf("shared"));
  for (const role of ["client", "admin", "worker"] as const) t.true(mayAct(shared, role));
  t.is(ring.authenticate("nobody"), undefined);
  t.is(ring.authenticate(hashOfKey("alice-key")), undefined, "the hash itself is no key");
});

test("admin keys may do what client keys may", (t) => {
  const file = keysFile(t, `keys:\n  ops: { role: admin, hash: "${hashOfKey("ops")}" }\n`);
  const ops = KeyRing.load({ file }).authenticate("ops")!;
  t.true(mayAct(ops, "admin"));
  t.true(mayAct(ops, "client"));
  t.false(mayAct(ops, "worker"));
});

test("without a file or a shared key nothing is required; a file that cannot be read stops the start", (t) => {
  t.false(KeyRing.load({}).required);
  t.throws(() => KeyRing.load({ file: "/nonexistent/keys.yaml" }), { message: /cannot read keys file \/nonexistent\/keys.yaml: ENOENT/ });
});

test("SIGHUP reloads the file; a bad file keeps the keys loaded before and says why", (t) => {
  const file = keysFile(t, `keys:\n  a: { role: client, hash: "${hashOfKey("ka")}" }\n`);
  const { logger, lines } = logCapture();
  const ring = KeyRing.load({ file });
  const stop = ring.reloadOnSighup(logger);
  t.teardown(stop);
  writeFileSync(file, `keys:\n  b: { role: admin, hash: "${hashOfKey("kb")}" }\n`);
  process.emit("SIGHUP", "SIGHUP");
  t.is(ring.authenticate("ka"), undefined, "a removed key is gone at once");
  t.is(ring.authenticate("kb")?.identity, "key:b");
  t.like(lines.at(-1), { event: "keys_reloaded", keys: 1, names: ["b"] });

  writeFileSync(file, "keys:\n  c: { role: superuser, hash: nope }\n");
  process.emit("SIGHUP", "SIGHUP");
  t.is(ring.authenticate("kb")?.identity, "key:b", "the old keys stay");
  t.like(lines.at(-1), { event: "keys_reload_failed", keys: 1 });
  t.regex(String(lines.at(-1)!.reason), /keys\.c\.role must be one of/);
  stop();
  writeFileSync(file, "keys: {}\n");
  process.emit("SIGHUP", "SIGHUP");
  t.truthy(ring.authenticate("kb"), "no reload once uninstalled");
});
