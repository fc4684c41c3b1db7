import test from "ava";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { projectRoot } from "../../../contracts/runtime/project-root.js";
import { objectsIn, SECRETS_TEMPLATE } from "../../support/deploy/manifests.js";
import { envTemplate, SYSTEMD_DIR } from "../../support/deploy/unit-files.js";

const root = projectRoot();
const PLACEHOLDER = "REPLACE_ME";

/** What a real secret looks like: a PEM block, a sha256 in hex, an llorch key, a Hugging Face token. */
const REAL_SECRET = [/-----BEGIN [A-Z ]+-----/, /\b[0-9a-f]{64}\b/i, /\bllorch_[A-Za-z0-9_-]{40,}/, /\bhf_[A-Za-z0-9]{30,}/];

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? filesUnder(join(dir, name)) : [join(dir, name)]));
}

test("every secret in the Secrets template is a placeholder marked REPLACE_ME", (t) => {
  const secrets = objectsIn(SECRETS_TEMPLATE).filter((o) => o.kind === "Secret");
  t.true(secrets.length >= 3);
  for (const s of secrets) {
    t.is(s.data, undefined, `${s.metadata.name}: stringData only, so a placeholder reads as one`);
    for (const [key, value] of Object.entries(s.stringData as Record<string, string>))
      t.true(value.includes(PLACEHOLDER), `${s.metadata.name}.${key}`);
  }
});

test("every key or token in the systemd env templates, set or shown as an example, is a placeholder marked REPLACE_ME", (t) => {
  let secrets = 0;
  for (const file of readdirSync(SYSTEMD_DIR).filter((f) => f.endsWith(".env"))) {
    const env = envTemplate(file);
    for (const [name, values] of [...[...env.set].map(([n, v]) => [n, [v]] as const), ...env.examples]) {
      if (!/KEY|TOKEN|SECRET|PASSWORD/.test(name)) continue;
      secrets++;
      for (const value of values) t.true(value.includes(PLACEHOLDER), `${file}: ${name}`);
    }
  }
  t.true(secrets >= 3);
});

test("no real key, hash, token or private key is in the deployment files or the Dockerfile", (t) => {
  const sample = ["-----BEGIN PRIVATE KEY-----", "ab".repeat(32), `llorch_${"x".repeat(43)}`, `hf_${"Q".repeat(34)}`];
  t.deepEqual(
    sample.map((s) => REAL_SECRET.some((p) => p.test(s))),
    [true, true, true, true],
    "the patterns find what they look for",
  );
  for (const file of [...filesUnder(join(root, "deploy")), join(root, "Dockerfile"), join(root, ".dockerignore")]) {
    const text = readFileSync(file, "utf8");
    t.deepEqual(REAL_SECRET.filter((p) => p.test(text)).map(String), [], relative(root, file));
  }
});
