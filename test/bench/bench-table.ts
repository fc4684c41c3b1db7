/**
 * The bench's one table: each figure for direct, nginx and llama-orch side
 * by side, the issue's goal for it and how llama-orch stands against that
 * goal (a ratio and met/missed), built from the run's median figures. Also
 * rendered for machines (--json) with the raw numbers.
 */
import type { SetupName } from "./bench-setups.js";
import type { Figures } from "./stats.js";

export interface BenchResults {
  meta: Record<string, string | number | boolean>;
  setups: Partial<Record<SetupName, Figures>>;
  /** llama-orch figures with no peer: core RSS over many tasks, the embedded engine. */
  orchOnly: Figures;
  exactness: { checked: Record<string, number>; problems: string[] };
  notes: string[];
  /** Top self-time functions per llama-orch process, with --profile. */
  profiles: Record<string, { name: string; at: string; selfPercent: number }[]>;
}

export interface Row {
  figure: string;
  direct: string;
  nginx: string;
  orch: string;
  goal: string;
  verdict: string;
  /** undefined: no goal, or not measurable in this run. */
  met: boolean | undefined;
}

const COLUMNS: [keyof Row, string][] = [
  ["figure", "figure"],
  ["direct", "direct"],
  ["nginx", "nginx"],
  ["orch", "llama-orch"],
  ["goal", "goal"],
  ["verdict", "llama-orch vs goal"],
];

function fixed(x: number | undefined, digits?: number): string {
  if (x === undefined || Number.isNaN(x)) return "—";
  const d = digits ?? (Math.abs(x) < 10 ? 2 : Math.abs(x) < 100 ? 1 : 0);
  return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** "8.65 (core 4.10, edge 2.85, sidecar 1.70)": the sum and each party's share. */
function withParts(f: Figures | undefined, key: string): string {
  if (!f || f[key] === undefined) return "—";
  const parts = Object.keys(f)
    .filter((k) => k.startsWith(`${key}.`))
    .map((k) => `${k.slice(key.length + 1)} ${fixed(f[k])}`);
  return parts.length > 1 ? `${fixed(f[key])} (${parts.join(", ")})` : fixed(f[key]);
}

function verdict(ratio: number | undefined, met: boolean | undefined, text: string): Pick<Row, "verdict" | "met"> {
  if (ratio === undefined || Number.isNaN(ratio) || met === undefined) return { verdict: "n/a", met: undefined };
  return { verdict: `${text} — ${met ? "met" : "MISSED"}`, met };
}

type Get = (setup: SetupName, key: string) => number | undefined;

function latencyRows(r: BenchResults, get: Get): Row[] {
  const cell = (s: SetupName, c: number) =>
    r.setups[s] ? `${fixed(get(s, `ttft.c${c}.p50`))} / ${fixed(get(s, `ttft.c${c}.p99`))} ms` : "skipped";
  const row = (c: number, goal: string, v: Pick<Row, "verdict" | "met">): Row => ({
    figure: c === 1 ? "TTFT p50 / p99, one client, 16-token streams" : `TTFT p50 / p99, ${c.toLocaleString("en-US")} concurrent`,
    direct: cell("direct", c),
    nginx: cell("nginx", c),
    orch: cell("llama-orch", c),
    goal,
    ...v,
  });
  const over50 = (get("llama-orch", "ttft.c1.p50") ?? NaN) - (get("direct", "ttft.c1.p50") ?? NaN);
  const over99 = (get("llama-orch", "ttft.c1.p99") ?? NaN) - (get("direct", "ttft.c1.p99") ?? NaN);
  const oneClient = verdict(Math.max(over50, over99), over50 <= 0.5 && over99 <= 2, `+${fixed(over50)} / +${fixed(over99)} ms`);
  const p99x = (get("llama-orch", "ttft.c100.p99") ?? NaN) / (get("nginx", "ttft.c100.p99") ?? NaN);
  return [
    row(1, "≤ engine +0.5 / +2 ms", oneClient),
    row(10, "—", { verdict: "", met: undefined }),
    row(100, "p99 ≤ 2× nginx", verdict(p99x, p99x <= 2, `p99 ${fixed(p99x)}× nginx`)),
    row(1000, "—", { verdict: "", met: undefined }),
  ];
}

function costRows(r: BenchResults, get: Get): Row[] {
  const o = (key: string) => get("llama-orch", key) ?? NaN;
  const n = (key: string) => get("nginx", key) ?? NaN;
  const skipped = (s: SetupName, text: string) => (r.setups[s] ? text : "skipped");
  const cpuReq = o("request.cpu_ms");
  const perS = o("request.per_s");
  const tps = o("stream.tokens_per_s") / n("stream.tokens_per_s");
  const per1m = o("stream.cpu_s_per_1m") / n("stream.cpu_s_per_1m");
  const rss = o("open.rss_mb_per_1000");
  const [streams, tokens] = [r.meta.streams ?? 100, r.meta.tokens ?? 2000].map((x) => Number(x).toLocaleString("en-US"));
  return [
    {
      figure: "proxy CPU per request, ms (1-token tasks, 100 concurrent)",
      direct: skipped("direct", "0"),
      nginx: withParts(r.setups.nginx, "request.cpu_ms"),
      orch: withParts(r.setups["llama-orch"], "request.cpu_ms"),
      goal: "≤ 1 ms summed",
      ...verdict(cpuReq, cpuReq <= 1, `${fixed(cpuReq)}× the limit`),
    },
    {
      figure: "short tasks completed per second (same phase)",
      direct: fixed(get("direct", "request.per_s"), 0),
      nginx: skipped("nginx", fixed(n("request.per_s"), 0)),
      orch: fixed(perS, 0),
      goal: "≥ 2,000/s",
      ...verdict(perS, perS >= 2000, `${fixed(perS / 2000)}× the goal`),
    },
    {
      figure: `tokens/s, ${streams} streams × ${tokens} tokens`,
      direct: fixed(get("direct", "stream.tokens_per_s"), 0),
      nginx: skipped("nginx", fixed(n("stream.tokens_per_s"), 0)),
      orch: fixed(o("stream.tokens_per_s"), 0),
      goal: "≥ nginx",
      ...verdict(tps, tps >= 1, `${fixed(tps)}× nginx`),
    },
    {
      figure: "proxy CPU s per 1M tokens",
      direct: skipped("direct", "0"),
      nginx: withParts(r.setups.nginx, "stream.cpu_s_per_1m"),
      orch: withParts(r.setups["llama-orch"], "stream.cpu_s_per_1m"),
      goal: "≤ nginx",
      ...verdict(per1m, per1m <= 1, `${fixed(per1m)}× nginx`),
    },
    {
      figure: "RSS per 1,000 open streams, MB",
      direct: "—",
      nginx: withParts(r.setups.nginx, "open.rss_mb_per_1000"),
      orch: withParts(r.setups["llama-orch"], "open.rss_mb_per_1000"),
      goal: "≤ 20 MB summed",
      ...verdict(rss, rss <= 20, `${fixed(rss / 20)}× the limit`),
    },
  ];
}

function orchOnlyRows(r: BenchResults): Row[] {
  const f = r.orchOnly;
  const rows: Row[] = [];
  if (f["core_rss.tasks"] !== undefined) {
    const kb = f["core_rss.kb_per_task"]!;
    rows.push({
      figure: `core RSS over ${fixed(f["core_rss.tasks"], 0)} short tasks, MB`,
      direct: "",
      nginx: "",
      orch: `${fixed(f["core_rss.start_mb"], 0)} → ${fixed(f["core_rss.end_mb"], 0)} (+${fixed(kb, 1)} KB/task)`,
      goal: "flat; ≤ 10 KB/retained task",
      ...verdict(kb, kb <= 10, `${fixed(kb / 10)}× the limit`),
    });
  }
  if (f["embedded.alone"] !== undefined) {
    const share = f["embedded.through"]! / f["embedded.alone"];
    rows.push({
      figure: `embedded llama.cpp tokens/s (${f["embedded.threads"]} threads, ${f["embedded.streams"]} streams)`,
      direct: `${fixed(f["embedded.alone"], 0)} (alone)`,
      nginx: "",
      orch: fixed(f["embedded.through"], 0),
      goal: "—",
      verdict: `${fixed(share * 100, 0)}% of alone`,
      met: undefined,
    });
  }
  return rows;
}

function exactnessRow(r: BenchResults): Row {
  const cell = (s: SetupName) => (r.setups[s] ? `${(r.exactness.checked[s] ?? 0).toLocaleString("en-US")} streams` : "skipped");
  const bad = r.exactness.problems.length;
  return {
    figure: "streams checked for exactness",
    direct: cell("direct"),
    nginx: cell("nginx"),
    orch: cell("llama-orch"),
    goal: "every token, once, in order",
    verdict: bad === 0 ? "all exact" : `${bad} NOT EXACT`,
    met: bad === 0,
  };
}

export function tableRows(r: BenchResults): Row[] {
  const get: Get = (setup, key) => r.setups[setup]?.[key];
  return [...latencyRows(r, get), ...costRows(r, get), ...orchOnlyRows(r), exactnessRow(r)];
}

/** The rows as a Markdown table, padded so it reads in a terminal too. */
export function renderTable(rows: readonly Row[]): string {
  const widths = COLUMNS.map(([k, title]) => Math.max(title.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(COLUMNS.map(([, title]) => title)),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map((r) => line(COLUMNS.map(([k]) => String(r[k])))),
  ].join("\n");
}

export function renderJson(r: BenchResults, rows: readonly Row[]): string {
  return JSON.stringify({ ...r, table: rows }, null, 2);
}
