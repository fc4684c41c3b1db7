/**
 * npm run bench — measures the hot path on this machine, prints figures.
 *
 * Starts core, one mock sidecar (zero-delay engine) and edge as real
 * processes, then measures side by side:
 *   - time to first token through the edge (POST /v1/tasks + SSE) vs straight
 *     from the sidecar's Submit, p50/p99, at 1 and 100 concurrent streams;
 *   - aggregate tokens/s delivered to SSE clients;
 *   - peak RSS of each process;
 *   - the embedded llama.cpp engine alone and through the stack (embedded-bench.ts);
 *   - core's RSS per 1,000 retained finished tasks, and past --max-retained-tasks (retention-bench.ts).
 * Nothing here asserts: tests do not time things; this prints numbers.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { SubmitRequest, WorkerServiceClient } from "../../contracts/gen/llama_orch/v1/worker.js";
import { launchLlorch, stopProcess, type LaunchedProcess } from "../../cli/process-launcher.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { taskBody } from "../support/task-body.js";
import { benchEmbedded } from "./embedded-bench.js";
import { benchRetention } from "./retention-bench.js";

const LLORCH = join(projectRoot(), "dist", "cli", "llorch.js");
const SLOTS = 128;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(samples: number[]): { p50: number; p99: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length };
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Runs `total` jobs with at most `concurrency` in flight; returns their results. */
async function pool<T>(total: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) out.push(await job(next++));
    }),
  );
  return out;
}

/** POST a task, open its stream; resolves with ms to the first token and the tokens counted. */
async function viaEdge(edgeUrl: string, maxTokens: number): Promise<{ ttftMs: number; tokens: number }> {
  const t0 = performance.now();
  const body = JSON.stringify(
    taskBody({ max_tokens: maxTokens, ctx: Math.max(2048, maxTokens), prompt: "benchmark prompt", seed: 1, deadline_ms: 600_000 }),
  );
  const admitted = await fetch(`${edgeUrl}/v1/tasks`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  if (admitted.status !== 202) throw new Error(`admission failed: ${admitted.status} ${await admitted.text()}`);
  const { task_id } = (await admitted.json()) as { task_id: string };
  const res = await fetch(`${edgeUrl}/v1/tasks/${task_id}/stream`);
  let ttftMs = -1;
  let tokens = 0;
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    const text = decoder.decode(chunk as Uint8Array, { stream: true });
    // Counting frames by their event line is enough here and keeps the client cheap.
    let at = text.indexOf("event: token");
    while (at >= 0) {
      if (ttftMs < 0) ttftMs = performance.now() - t0;
      tokens++;
      at = text.indexOf("event: token", at + 12);
    }
  }
  return { ttftMs, tokens };
}

function viaSidecar(client: WorkerServiceClient, maxTokens: number): Promise<{ ttftMs: number; tokens: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ttftMs = -1;
    let tokens = 0;
    const call = client.submit(
      SubmitRequest.fromPartial({
        taskId: crypto.randomUUID(),
        sessionId: crypto.randomUUID(),
        workload: Workload.WORKLOAD_COMPLETION,
        modelRef: "mock:tiny",
        prompt: "benchmark prompt",
        maxTokens,
        seed: 1,
        ctx: 2048,
      }),
    );
    call.on("data", (m: { event?: { $case: string; tokens?: { texts: string[] } } }) => {
      if (m.event?.$case === "tokens") {
        if (ttftMs < 0) ttftMs = performance.now() - t0;
        tokens += m.event.tokens!.texts.length;
      }
    });
    call.on("end", () => resolve({ ttftMs, tokens }));
    call.on("error", reject);
  });
}

async function main(): Promise<void> {
  const procs: LaunchedProcess[] = [];
  const logDir = mkdtempSync(join(tmpdir(), "llorch-bench-"));
  const launch = async (name: string, args: string[], nodeArgs: string[] = []) => {
    // Logs go to files at the default level, as in production; not through this process.
    const p = launchLlorch(name, args, { script: LLORCH, nodeArgs, logFile: join(logDir, `${name}.log`) });
    procs.push(p);
    return p.ready;
  };
  try {
    // `npm run bench -- --transcripts off` measures without the per-task transcript artifacts.
    const transcripts = process.argv.includes("--transcripts") ? process.argv[process.argv.indexOf("--transcripts") + 1]! : "on";
    const core = await launch("core", [
      "core",
      "--port",
      "0",
      "--queue-capacity",
      "10000",
      "--transcripts",
      transcripts,
      "--artifacts-root",
      join(logDir, "artifacts"),
      "--catalog-root",
      join(logDir, "catalog"),
      "--journal-root",
      join(logDir, "journal"),
    ]);
    const worker = await launch("worker", [
      "worker",
      "--port",
      "0",
      "--core",
      core.address!,
      "--slots",
      String(SLOTS),
      "--tokens-per-second",
      "0",
      "--ctx-max",
      "1000000",
      "--pool",
      "bench",
      "--replica",
      "bench-r1",
    ]);
    const edge = await launch("edge", ["edge", "--port", "0", "--core", core.address!]);
    await new Promise((r) => setTimeout(r, 500)); // registration and first health/props
    const client = new WorkerServiceClient(worker.address!, credentials.createInsecure());

    const rows: string[] = [];
    const line = (label: string, s: { p50: number; p99: number; n: number }) =>
      rows.push(`${label.padEnd(44)} p50 ${s.p50.toFixed(2).padStart(8)} ms   p99 ${s.p99.toFixed(2).padStart(8)} ms   (n=${s.n})`);

    // Warm up both paths (JIT, connections).
    await pool(200, 20, () => viaEdge(edge.url!, 4));
    await pool(200, 20, () => viaSidecar(client, 4));

    for (const concurrency of [1, 100]) {
      const n = concurrency === 1 ? 300 : 1000;
      const sidecar = await pool(n, concurrency, () => viaSidecar(client, 8));
      const edgeRuns = await pool(n, concurrency, () => viaEdge(edge.url!, 8));
      line(`TTFT straight from sidecar Submit, c=${concurrency}`, summary(sidecar.map((r) => r.ttftMs)));
      line(`TTFT through edge (POST + SSE), c=${concurrency}`, summary(edgeRuns.map((r) => r.ttftMs)));
    }

    for (const concurrency of [1, 16, 100]) {
      const perStream = concurrency === 1 ? 100_000 : Math.round(400_000 / concurrency);
      const t0 = performance.now();
      const runs = await pool(concurrency, concurrency, () => viaEdge(edge.url!, perStream));
      const secs = (performance.now() - t0) / 1000;
      const total = runs.reduce((n, r) => n + r.tokens, 0);
      rows.push(
        `${`SSE throughput, ${concurrency} stream(s) x ${perStream} tokens`.padEnd(44)} ${Math.round(total / secs)
          .toLocaleString("en-US")
          .padStart(10)} tokens/s delivered to SSE clients`,
      );
    }
    {
      const t0 = performance.now();
      const runs = await pool(16, 16, () => viaSidecar(client, 25_000));
      const secs = (performance.now() - t0) / 1000;
      const total = runs.reduce((n, r) => n + r.tokens, 0);
      rows.push(
        `${"gRPC throughput straight from sidecar, 16 x 25000".padEnd(44)} ${Math.round(total / secs)
          .toLocaleString("en-US")
          .padStart(10)} tokens/s`,
      );
    }

    rows.push("");
    // A process stopped before the end has its peak read first: /proc forgets it once it is gone.
    const peaks = new Map<string, number>();
    const stop = async (name: string) => {
      const p = procs.find((x) => x.name === name);
      if (!p) return;
      peaks.set(name, peakRssMb(p.child.pid!));
      await stopProcess(p);
    };
    rows.push(...(await benchEmbedded(launch, stop, logDir)));
    rows.push("");
    const pidOf = (name: string) => procs.find((x) => x.name === name)!.child.pid!;
    rows.push(...(await benchRetention({ launch, pidOf, stop, logDir })));

    rows.push("", "Peak RSS (VmHWM):");
    for (const p of procs) rows.push(`  ${p.name.padEnd(22)} ${(peaks.get(p.name) ?? peakRssMb(p.child.pid!)).toFixed(1)} MB`);
    rows.push(`  ${"bench".padEnd(22)} ${peakRssMb(process.pid).toFixed(1)} MB (client)`);
    client.close();
    process.stdout.write(
      `\nllama-orch bench (node ${process.version}, mock engine at full speed, ${SLOTS} slots, transcripts ${transcripts}; process logs in ${logDir})\n\n${rows.join("\n")}\n\n`,
    );
  } finally {
    await Promise.all(procs.reverse().map((p) => stopProcess(p)));
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
