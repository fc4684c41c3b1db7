import { freezeEdge, freezeSidecar, killEdge, killSidecar, restartSidecarSameId } from "./process-scenarios.js";
import { fuzz, nonReading, slowloris } from "./client-scenarios.js";
import { freezeCore, killCorePastGrace, killCoreWithinGrace } from "./core-scenarios.js";
import { impostorRegistrations, unauthenticatedWorkerCalls } from "./trust-scenarios.js";
import type { ChaosRow, Scenario } from "./chaos-kit.js";

// `npm run chaos`: the long fault runs against real processes, one system per
// scenario, printed as a table of what held. Exits 1 when anything did not.

const SCENARIOS: Record<string, Scenario> = {
  killSidecar,
  freezeSidecar,
  restartSidecarSameId,
  killEdge,
  freezeEdge,
  killCoreWithinGrace,
  killCorePastGrace,
  freezeCore,
  impostorRegistrations,
  unauthenticatedWorkerCalls,
  fuzz: fuzz(Number(process.env.CHAOS_FUZZ_COUNT ?? 10_000)),
  slowloris,
  nonReading,
};

async function main(): Promise<void> {
  // `npm run chaos -- killEdge fuzz` runs only those.
  const only = process.argv.slice(2);
  const rows: ChaosRow[] = [];
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (only.length && !only.includes(name)) continue;
    const started = Date.now();
    const row = await scenario().catch((err: Error) => ({ scenario: name, held: false, figures: `threw: ${err.message}` }));
    rows.push(row);
    console.error(`${row.held ? "held  " : "BROKE "} ${row.scenario} (${Math.round((Date.now() - started) / 1000)} s): ${row.figures}`);
  }
  printTable(rows);
  process.exitCode = rows.every((r) => r.held) ? 0 : 1;
}

function printTable(rows: ChaosRow[]): void {
  const width = Math.max(...rows.map((r) => r.scenario.length));
  console.log(`\n${"scenario".padEnd(width)}  held  figures`);
  for (const r of rows) console.log(`${r.scenario.padEnd(width)}  ${r.held ? "yes " : "NO  "}  ${r.figures}`);
}

await main();
