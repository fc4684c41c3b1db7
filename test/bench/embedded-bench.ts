/**
 * The embedded llama.cpp engine: tokens/s of node-llama-cpp alone (in this
 * process, same model, same threads, same sampling) against the same model
 * served through sidecar → core → edge, at 1 and 2 concurrent streams, for 1
 * and 2 llama.cpp threads. Prints figures; asserts nothing.
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { demoModelGguf } from "../../workers/gguf/demo-model.js";
import { DEFAULT_SAMPLING, promptTokens } from "../../workers/llamacpp-embedded/embedded-generation.js";
import { taskBody } from "../support/task-body.js";

const TOKENS = 2_000;
const CTX = 4_096;
const PROMPT = "benchmark prompt about llamas";

type Launch = (name: string, args: string[]) => Promise<{ address?: string; url?: string }>;

/** node-llama-cpp on its own: `streams` sequences of one context generating TOKENS tokens each. */
async function direct(modelPath: string, threads: number, streams: number): Promise<number> {
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never" });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: CTX, sequences: streams, threads });
  try {
    const t0 = performance.now();
    const counts = await Promise.all(
      Array.from({ length: streams }, async (_, i) => {
        const sequence = context.getSequence();
        let n = 0;
        for await (const _token of sequence.evaluate(promptTokens(model, PROMPT), { ...DEFAULT_SAMPLING, seed: i + 1 })) {
          if (++n >= TOKENS) break;
        }
        return n;
      }),
    );
    return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

async function streamTokens(edgeUrl: string, modelRef: string, seed: number): Promise<number> {
  const body = JSON.stringify(taskBody({ model_ref: modelRef, ctx: CTX, max_tokens: TOKENS, prompt: PROMPT, seed }));
  const admitted = await fetch(`${edgeUrl}/v1/tasks`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  if (admitted.status !== 202) throw new Error(`admission failed: ${admitted.status} ${await admitted.text()}`);
  const { task_id } = (await admitted.json()) as { task_id: string };
  const res = await fetch(`${edgeUrl}/v1/tasks/${task_id}/stream`);
  const text = await res.text();
  const n = text.split("event: token\n").length - 1;
  if (n !== TOKENS) throw new Error(`stream ended after ${n} tokens: ${text.slice(-300)}`);
  return n;
}

async function throughStack(edgeUrl: string, modelRef: string, streams: number): Promise<number> {
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: streams }, (_, i) => streamTokens(edgeUrl, modelRef, i + 1)));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== streams * TOKENS) throw new Error(`expected ${streams * TOKENS} tokens, got ${total}`);
  return total / ((performance.now() - t0) / 1000);
}

async function poolReady(edgeUrl: string, pool: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await fetch(`${edgeUrl}/v1/pools/${pool}/health`);
    if (res.status === 200 && ((await res.json()) as { ready: boolean }).ready) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`pool ${pool} did not become ready`);
}

export async function benchEmbedded(launch: Launch, stop: (name: string) => Promise<void>, dir: string): Promise<string[]> {
  const modelPath = join(dir, "bench-model.gguf");
  writeFileSync(modelPath, Buffer.concat(demoModelGguf({ seed: 1, endsGenerations: false, contextLength: CTX })));
  const modelRef = `file:${modelPath}`;
  const rows = [`Embedded llama.cpp (demo model, ${TOKENS} tokens per stream, ${availableParallelism()} cores): tokens/s`];
  const core = await launch("core-embedded", [
    "core",
    "--port",
    "0",
    "--artifacts-root",
    join(dir, "e-art"),
    "--catalog-root",
    join(dir, "e-cat"),
    "--journal-root",
    join(dir, "e-journal"),
  ]);
  const edge = await launch("edge-embedded", ["edge", "--port", "0", "--core", core.address!]);
  for (const threads of [1, 2]) {
    const worker = `worker-embedded-t${threads}`;
    await launch(worker, [
      "worker",
      "--port",
      "0",
      "--core",
      core.address!,
      "--pool",
      `embedded-t${threads}`,
      "--model",
      modelRef,
      "--slots",
      "2",
      "--ctx-max",
      String(CTX),
      "--threads",
      String(threads),
    ]);
    await poolReady(edge.url!, `embedded-t${threads}`);
    await throughStack(edge.url!, modelRef, 1); // warm-up
    for (const streams of [1, 2]) {
      const alone = await direct(modelPath, threads, streams);
      const stacked = await throughStack(edge.url!, modelRef, streams);
      rows.push(
        `  threads ${threads}, ${streams} stream(s):  node-llama-cpp alone ${Math.round(alone).toLocaleString("en-US").padStart(7)}` +
          `   through edge ${Math.round(stacked).toLocaleString("en-US").padStart(7)}   (${((stacked / alone) * 100).toFixed(0)}%)`,
      );
    }
    await stop(worker);
  }
  return rows;
}
