// What the provisioner's tests share: a fake hub with a few repositories, a
// private temp directory as HOME (so no developer's real Hugging Face token
// or cache leaks in), and provisionModel pointed at both.
import type { ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { HfHubFake, type HubRepoSpec } from "../../../fakes/hf-hub-fake.js";
import { provisionModel, type ProvisionedModel, type ProvisionOptions } from "../../../../workers/provision/provision-model.js";
import type { ModelRef } from "../../../../contracts/model-ref.js";

/** Deterministic bytes that do not compress to nothing and differ per seed. */
export function bytesOf(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash("sha256").update(seed).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

export const GGUF_REPO = "TinyOrg/tiny-chat-GGUF";
export const GGUF_FILE = "tiny-chat.q4_0.gguf";
export const GGUF_BYTES = bytesOf(200_000, "gguf");
export const HF_REPO = "TinyOrg/tiny-chat-hf";
export const GATED_REPO = "GatedOrg/gated-GGUF";
export const GATED_BYTES = bytesOf(20_000, "gated");

export function defaultRepos(): HubRepoSpec[] {
  return [
    {
      id: GGUF_REPO,
      files: [
        { path: GGUF_FILE, content: GGUF_BYTES },
        { path: "README.md", content: "# tiny chat\n", lfs: false },
      ],
      branches: ["v1"],
    },
    {
      id: HF_REPO,
      files: [
        { path: "config.json", content: '{"model_type":"llama"}\n', lfs: false },
        { path: "tokenizer.json", content: '{"version":"1.0"}\n', lfs: false },
        { path: "model.safetensors", content: bytesOf(64_000, "safetensors") },
        { path: "extra/adapter.bin", content: bytesOf(3_000, "adapter") },
      ],
    },
    { id: GATED_REPO, gated: true, files: [{ path: "model.gguf", content: GATED_BYTES }] },
  ];
}

export interface HubWorld {
  fake: HfHubFake;
  /** The temp directory: HOME, and the parent of everything below. */
  dir: string;
  cacheDir: string;
  /** HF_ENDPOINT at the fake, HOME and HF_HOME in the temp directory. */
  env: Record<string, string>;
  provision(ref: string | ModelRef, options?: ProvisionOptions): Promise<ProvisionedModel>;
}

export async function tempDir(t: ExecutionContext, prefix = "llorch-provision-"): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function hubWorld(
  t: ExecutionContext,
  repos: HubRepoSpec[] = defaultRepos(),
  fakeOptions: { tls?: boolean } = {},
): Promise<HubWorld> {
  const fake = await HfHubFake.start(repos, fakeOptions);
  t.teardown(() => fake.close());
  const dir = await tempDir(t);
  const cacheDir = path.join(dir, "models");
  const env = { HF_ENDPOINT: fake.url, HOME: dir, HF_HOME: path.join(dir, "hf-home") };
  return {
    fake,
    dir,
    cacheDir,
    env,
    provision: (ref, options = {}) => provisionModel(ref, { cacheDir, retryBaseDelayMs: 5, ...options, env: { ...env, ...options.env } }),
  };
}

export function sha256Hex(bytes: Buffer | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Every file name under `dir`, relative, sorted; [] when it does not exist. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}
