/**
 * What finished tasks cost core's memory. Three cores of their own
 * (transcripts off, so only memory is measured) run the same short tasks
 * through an edge and a mock sidecar, and their resident sets are compared
 * once the work is done:
 *   - BOUND tasks with --max-retained-tasks BASE: the baseline (BASE retained);
 *   - BOUND tasks, all retained: the difference to the baseline, per 1,000
 *     tasks more, is core's RSS per 1,000 retained tasks;
 *   - twice BOUND tasks with --max-retained-tasks BOUND: should cost what the
 *     second did, because the oldest finished tasks are evicted.
 * Comparing processes that did the same work cancels most of what garbage
 * collection timing adds to a single process's RSS. Each lane keeps one
 * session, so sessions do not grow with the tasks. Prints figures; asserts nothing.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { taskBody } from "../support/task-body.js";

type Launch = (name: string, args: string[], nodeArgs?: string[]) => Promise<{ address?: string; url?: string }>;

/** Lets the bench collect core's garbage before reading its RSS (gc-on-signal.ts). */
const GC_ON_SIGNAL = ["--expose-gc", "--import", fileURLToPath(new URL("./gc-on-signal.js", import.meta.url))];

const BOUND = 5_000;
/** Few enough to compare against, enough that no task is evicted before its slow client opens its stream. */
const BASE = 1_000;
const LANES = 64;

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

/** One task through the edge, its stream read to the end. */
async function runTask(edgeUrl: string, sessionId: string): Promise<void> {
  const body = JSON.stringify(taskBody({ session_id: sessionId, max_tokens: 8, prompt: "retention bench prompt" }));
  const admitted = await fetch(`${edgeUrl}/v1/tasks`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  if (admitted.status !== 202) throw new Error(`admission failed: ${admitted.status} ${await admitted.text()}`);
  const { task_id } = (await admitted.json()) as { task_id: string };
  const text = await (await fetch(`${edgeUrl}/v1/tasks/${task_id}/stream`)).text();
  if (!text.includes("event: end")) throw new Error(`stream of ${task_id} did not end: ${text.slice(-200)}`);
}

interface Run {
  name: string;
  tasks: number;
  coreFlags: string[];
}

export interface RetentionBenchDeps {
  launch: Launch;
  pidOf: (name: string) => number;
  stop: (name: string) => Promise<void>;
  logDir: string;
}

/** Core RSS (MB) after `run.tasks` tasks on a core started with `run.coreFlags`; its processes are stopped after. */
async function measure(run: Run, { launch, pidOf, stop, logDir }: RetentionBenchDeps): Promise<number> {
  const core = await launch(
    `core-${run.name}`,
    [
      "core",
      "--port",
      "0",
      "--transcripts",
      "off",
      "--session-max-turns",
      String(run.tasks),
      "--artifacts-root",
      join(logDir, `${run.name}-artifacts`),
      "--catalog-root",
      join(logDir, `${run.name}-catalog`),
      ...run.coreFlags,
    ],
    GC_ON_SIGNAL,
  );
  await launch(`worker-${run.name}`, ["worker", "--port", "0", "--core", core.address!, "--slots", "64", "--tokens-per-second", "0"]);
  const edge = await launch(`edge-${run.name}`, ["edge", "--port", "0", "--core", core.address!]);
  await new Promise((r) => setTimeout(r, 500));
  const sessions = Array.from({ length: LANES }, () => crypto.randomUUID());
  let next = 0;
  await Promise.all(
    sessions.map(async (sessionId) => {
      while (next < run.tasks) {
        next++;
        await runTask(edge.url!, sessionId);
      }
    }),
  );
  const pid = pidOf(`core-${run.name}`);
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 500));
    process.kill(pid, "SIGUSR2");
  }
  await new Promise((r) => setTimeout(r, 500));
  const mb = rssMb(pid);
  for (const name of ["edge", "worker", "core"]) await stop(`${name}-${run.name}`);
  return mb;
}

export async function benchRetention(deps: RetentionBenchDeps): Promise<string[]> {
  const bound = ["--max-retained-tasks", String(BOUND)];
  const base = await measure({ name: "ret-base", tasks: BOUND, coreFlags: ["--max-retained-tasks", String(BASE)] }, deps);
  const all = await measure({ name: "ret-all", tasks: BOUND, coreFlags: bound }, deps);
  const past = await measure({ name: "ret-past", tasks: 2 * BOUND, coreFlags: bound }, deps);
  const n = BOUND.toLocaleString("en-US");
  const row = (label: string, mb: number) => `  ${label.padEnd(52)} ${mb.toFixed(1).padStart(7)} MB`;
  return [
    `Core memory and finished tasks (transcripts off, ${LANES} concurrent, 8 tokens each; core RSS once the work is done):`,
    row(`${n} tasks, --max-retained-tasks ${BASE.toLocaleString("en-US")}`, base),
    row(`${n} tasks, --max-retained-tasks ${n} (all retained)`, all),
    row(`${(2 * BOUND).toLocaleString("en-US")} tasks, --max-retained-tasks ${n}`, past),
    row("core RSS per 1,000 retained tasks", ((all - base) * 1_000) / (BOUND - BASE)),
  ];
}
