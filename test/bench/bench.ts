/**
 * npm run bench — llama-orch against its peers on this machine, in one run.
 *
 * One zero-delay fake llama.cpp engine (its own process, one socket write per
 * token) serves every setup: straight to the engine, through nginx
 * (proxy_buffering off) and through llama-orch (edge → core → sidecar with
 * the llama.cpp adapter). Each phase runs the setups one after the other,
 * `--passes` times, and the table shows medians: TTFT at 1, 10, 100 and
 * 1,000 concurrent streams, CPU per request and per million tokens (from
 * /proc, per process), tokens/s, RSS per 1,000 open streams, core RSS over
 * many tasks and the embedded engine; then core's RSS per retained finished
 * task (retention-bench.ts). Every stream is checked for exactness;
 * one that is not makes the run fail. Figures are printed, never asserted.
 *
 *   npm run bench [-- --quick] [--json] [--passes N] [--transcripts on|off]
 *                 [--no-nginx] [--no-embedded] [--embedded-threads 1,2] [--no-retention] [--profile]
 */
import { mkdtempSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BenchProcesses } from "./bench-procs.js";
import { directSetup, nginxSetup, orchSetup, type Setup, type SetupName } from "./bench-setups.js";
import { renderJson, renderTable, tableRows, type BenchResults } from "./bench-table.js";
import { benchEmbedded } from "./embedded-bench.js";
import { ExactnessLedger } from "./exactness.js";
import { startFakeEngine } from "./fake-engine.js";
import { measureCoreRss } from "./measure-core-rss.js";
import { measureRequestCost, measureTokenCost } from "./measure-cost.js";
import { measureOpenStreams } from "./measure-open-streams.js";
import { measureTtft } from "./measure-ttft.js";
import { startNginx } from "./nginx-proxy.js";
import { startOrch } from "./orch-stack.js";
import { profileOrch } from "./profile-run.js";
import { benchRetention } from "./retention-bench.js";
import { medianFigures, pool, type Figures } from "./stats.js";

const FULL = {
  warmup: 300,
  ttft1: 300,
  ttft10: 1000,
  ttft100: 2000,
  ttft1000: 2000,
  requests: 3000,
  tokens: 2000,
  open: 1000,
  tasks: 10_000,
};
const QUICK = { warmup: 50, ttft1: 30, ttft10: 100, ttft100: 200, ttft1000: 1000, requests: 300, tokens: 200, open: 200, tasks: 400 };
type Sizes = typeof FULL;
const SLOTS = 1_100;
const STREAMS = 100;

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    passes: { type: "string" },
    transcripts: { type: "string", default: "on" },
    "no-nginx": { type: "boolean", default: false },
    "no-embedded": { type: "boolean", default: false },
    "no-retention": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    "embedded-threads": { type: "string", default: "1" },
  },
});
const sizes: Sizes = args.quick ? QUICK : FULL;
const passes = Number(args.passes ?? (args.quick ? 1 : 3));
const transcripts = args.transcripts === "off" ? "off" : "on";
const started = performance.now();
/** Progress goes to stderr, so `--json` leaves stdout to the document. */
const say = (line: string) => process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

/** One pass of the repeated phases, setup after setup within each phase. */
async function onePass(setups: readonly Setup[], s: Sizes): Promise<Map<SetupName, Figures>> {
  const out = new Map<SetupName, Figures>(setups.map((x) => [x.name, {}]));
  const phase = async (label: string, run: (x: Setup) => Promise<Figures>) => {
    say(label);
    for (const x of setups) Object.assign(out.get(x.name)!, await run(x));
  };
  await phase("TTFT, one client", (x) => measureTtft(x, 1, s.ttft1, 16));
  await phase("TTFT, 10 concurrent", (x) => measureTtft(x, 10, s.ttft10, 16));
  await phase("TTFT, 100 concurrent", (x) => measureTtft(x, 100, s.ttft100, 16));
  await phase(`CPU per request, ${s.requests} one-token streams`, (x) => measureRequestCost(x, s.requests, STREAMS));
  await phase(`tokens/s and CPU per token, ${STREAMS} × ${s.tokens}`, (x) => measureTokenCost(x, STREAMS, s.tokens));
  return out;
}

async function measureSetups(
  setups: readonly Setup[],
  engine: Awaited<ReturnType<typeof startFakeEngine>>,
): Promise<BenchResults["setups"]> {
  say(`warm-up, ${sizes.warmup} streams per setup`);
  for (const x of setups) await pool(sizes.warmup, 20, () => x.stream(16));
  // Memory first, while the processes hold little garbage: growth into a heap left large by earlier phases would hide the cost.
  say(`RSS per 1,000 open streams (${sizes.open} held open)`);
  const held = new Map<SetupName, Figures>();
  for (const x of setups) held.set(x.name, await measureOpenStreams(x, engine, sizes.open, sizes.tokens));
  const runs = new Map<SetupName, Figures[]>(setups.map((x) => [x.name, []]));
  for (let p = 1; p <= passes; p++) {
    say(`pass ${p} of ${passes}`);
    for (const [name, f] of await onePass(setups, sizes)) runs.get(name)!.push(f);
  }
  const out: BenchResults["setups"] = {};
  for (const x of setups) out[x.name] = { ...medianFigures(runs.get(x.name)!), ...held.get(x.name) };
  say("TTFT, 1,000 concurrent (one pass)");
  for (const x of setups) Object.assign(out[x.name]!, await measureTtft(x, 1000, sizes.ttft1000, 16));
  return out;
}

function report(results: BenchResults, extra: string[]): void {
  const rows = tableRows(results);
  if (args.json) {
    process.stdout.write(`${renderJson(results, rows)}\n`);
  } else {
    const meta = Object.entries(results.meta).map(([k, v]) => `${k} ${v}`);
    const tops = Object.entries(results.profiles).flatMap(([role, fns]) => [
      `CPU profile of ${role} during ${STREAMS} × ${sizes.tokens} (top self time, % of busy):`,
      ...fns.map((f) => `  ${f.selfPercent.toFixed(1).padStart(5)}%  ${f.name}  ${f.at}`),
    ]);
    const lines = ["", `llama-orch bench: ${meta.join(", ")}`, "", renderTable(rows), "", ...results.notes, ...extra, ...tops, ""];
    process.stdout.write(lines.join("\n"));
  }
  const { problems } = results.exactness;
  if (problems.length > 0) {
    process.stderr.write(`\n!!! ${problems.length} STREAMS WERE NOT EXACT (lost, repeated or reordered tokens, or a wrong count):\n`);
    for (const p of problems.slice(0, 30)) process.stderr.write(`!!!   ${p}\n`);
    process.exitCode = 1;
  }
}

async function main(): Promise<void> {
  const loadStart = loadavg()[0]!.toFixed(1);
  const logDir = mkdtempSync(join(tmpdir(), "llorch-bench-"));
  const procs = new BenchProcesses(logDir);
  const ledger = new ExactnessLedger();
  const notes: string[] = [];
  const note = (line: string) => (notes.push(line), say(line));
  try {
    const engine = await startFakeEngine(procs, { tokens: Math.max(FULL.tokens, sizes.tokens), slots: SLOTS, ctx: 4_096 });
    const nginx = args["no-nginx"] ? (note("nginx: skipped (--no-nginx)"), undefined) : await startNginx(procs, engine.url, note);
    const stack = await startOrch(procs, { prefix: "", engineUrl: engine.url, slots: SLOTS, transcripts });
    const orch = orchSetup(stack, ledger);
    const setups = [directSetup(engine.url, ledger), ...(nginx ? [nginxSetup(nginx, ledger)] : []), orch];
    const measured = await measureSetups(setups, engine);
    say(`core RSS over ${sizes.tasks.toLocaleString("en-US")} short tasks`);
    const orchOnly = await measureCoreRss(orch, procs.pidOf(stack.names.core), sizes.tasks);
    const extra: string[] = [];
    if (!args.quick && !args["no-retention"]) {
      say("core RSS per 1,000 retained tasks (cores of their own, mock sidecars)");
      extra.push(...(await benchRetention(procs)), "");
    }
    if (!args.quick && !args["no-embedded"]) {
      say("embedded llama.cpp engine");
      const threads = args["embedded-threads"].split(",").map(Number);
      const embedded = await benchEmbedded(procs.launch, procs.stop, logDir, threads);
      Object.assign(orchOnly, embedded.figures);
      extra.push(...embedded.rows, "");
    }
    let profiles: BenchResults["profiles"] = {};
    if (args.profile) {
      say("CPU profiles of llama-orch's processes (a stack of their own, under --cpu-prof)");
      const run = { engineUrl: engine.url, slots: SLOTS, transcripts, streams: STREAMS, tokens: sizes.tokens, passes: 2, top: 8 } as const;
      profiles = await profileOrch(procs, run, ledger);
    }
    // Other work on the machine moves every figure: the load average at the start and at the end says how quiet it was.
    const load = `${loadStart} → ${loadavg()[0]!.toFixed(1)}`;
    const meta = {
      node: process.version,
      load,
      cores: availableParallelism(),
      nginx: nginx?.version ?? "skipped",
      transcripts,
      passes,
      quick: args.quick,
      streams: STREAMS,
      tokens: sizes.tokens,
      logs: logDir,
    };
    const exactness = { checked: Object.fromEntries(ledger.checked), problems: ledger.problems };
    report({ meta, setups: measured, orchOnly, exactness, notes, profiles }, extra);
  } finally {
    await procs.stopAll();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
