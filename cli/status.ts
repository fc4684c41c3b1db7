// `llorch status`, `llorch tasks` and `llorch cancel`: what is running, read
// through the public API only, so they work against a remote edge (`--edge
// URL`, the key from LLORCH_API_KEY) exactly as against a local one.
import { API_KEY_ENV } from "../contracts/runtime/api-key.js";
import { flagHelp, type FlagTable } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice, flagText } from "../contracts/runtime/flag-values.js";
import { askEdge, list, str, type Json } from "./edge-api.js";
import { progressBar, type ProgressJson } from "./progress-bar.js";
import { runVerify } from "./verify.js";

export interface StatusOptions {
  edge: string;
  json: boolean;
  state?: "queued" | "running" | "finished";
}

export const DEFAULT_EDGE_URL = "http://127.0.0.1:8080";

export const STATUS_FLAGS: FlagTable<StatusOptions> = [
  {
    name: "edge",
    arg: "URL",
    help: `the edge to ask (default ${DEFAULT_EDGE_URL})`,
    apply: (o, v, f) => (o.edge = flagText(f, v).replace(/\/+$/, "")),
  },
  { name: "json", arg: "", help: "print the API's JSON instead of tables", apply: (o, v, f) => (o.json = flagBoolean(f, v)) },
  {
    name: "state",
    arg: "STATE",
    help: "tasks: queued, running or finished (default: queued and running)",
    apply: (o, v, f) => (o.state = flagChoice(f, v, ["queued", "running", "finished"] as const)),
  },
];

export const statusHelp = `llorch status | tasks | cancel TASK_ID | verify MODEL_ID — what the system is doing, through the public API

  llorch status            pools, replicas, queues, running tasks and catalog models; loads and verifications with a bar
  llorch tasks             queued and running tasks (--state finished: the recent finished ones)
  llorch cancel TASK_ID    cancel a task
  llorch verify MODEL_ID   check a catalog model's digest, with a progress bar on a terminal (exit 1 when it fails)

${flagHelp(STATUS_FLAGS, 22)}

The API key comes from ${API_KEY_ENV} when the edge requires one.
`;

/** Columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function mib(v: unknown): string {
  return typeof v === "number" ? `${Math.round(v / 2 ** 20)} MiB` : "";
}

async function statusReport(o: StatusOptions): Promise<{ json: Json; text: string }> {
  const pools = list<Json>((await askEdge(o, "/v1/pools"))["pools"]);
  const health = await Promise.all(pools.map((p) => askEdge(o, `/v1/pools/${encodeURIComponent(str(p["id"]))}/health`)));
  const tasks = list<Json>((await askEdge(o, "/v1/tasks?limit=1000"))["tasks"]);
  const models = list<Json>((await askEdge(o, "/v1/catalog/models?limit=1000"))["models"]);
  const replicas = health.flatMap((h, i) =>
    list<Json>((h["metrics"] as Json | undefined)?.["replicas"]).map((r): Json => ({ ...r, pool_id: pools[i]!["id"] })),
  );
  const reloads = pools.map((p, i) => ({ ...p, reload_progress: (health[i]!["metrics"] as Json | undefined)?.["reload_progress"] }));
  const text = [
    table(
      ["POOL", "ENGINE", "MODEL", "READY", "SLOTS BUSY/TOTAL", "QUEUED (INT/BATCH)", "WAIT"],
      pools.map((p) => [
        str(p["id"]),
        str(p["engine"]),
        str(p["model_ref"]),
        p["draining"] ? "draining" : p["ready"] ? "yes" : "no",
        `${Number(p["slots_total"]) - Number(p["slots_free"])}/${str(p["slots_total"])}`,
        `${str(p["queued_interactive"] ?? 0)}/${str(p["queued_batch"] ?? 0)}`,
        p["predicted_wait_ms"] === undefined ? "-" : `${str(p["predicted_wait_ms"])} ms`,
      ]),
    ),
    "",
    table(
      ["REPLICA", "POOL", "STATE", "SLOTS FREE", "MODEL", "DEVICES", "MEMORY FREE", "LAST ERROR"],
      replicas.map((r) => [
        str(r["replica_id"]),
        str(r["pool_id"]),
        str(r["state"]),
        `${str(r["slots_free"])}/${str(r["slots_total"])}`,
        str(r["model_ref"]),
        str(r["device_mask"]),
        mib(r["vram_free_bytes"]),
        str(r["last_error"]),
      ]),
    ),
    "",
    tasksTable(tasks),
    "",
    table(
      ["MODEL", "STATE", "VERIFIED"],
      models.map((m) => [str(m["id"]), str(m["state"]), str((m["verification"] as Json | undefined)?.["status"] ?? "no")]),
    ),
    ...inProgress(reloads, replicas, models),
  ].join("\n");
  return { json: { pools: reloads, replicas, tasks, models }, text };
}

/** A bar for each pool reloading, replica loading and model being verified; nothing when none is. */
function inProgress(pools: Json[], replicas: Json[], models: Json[]): string[] {
  const rows: [string, unknown][] = [
    ...pools.map((p): [string, unknown] => [`pool ${str(p["id"])} (reload)`, p["reload_progress"]]),
    ...replicas.map((r): [string, unknown] => [`replica ${str(r["replica_id"])}`, r["progress"]]),
    ...models.map((m): [string, unknown] => [`model ${str(m["id"])}`, (m["verification"] as Json | undefined)?.["progress"]]),
  ];
  const busy = rows.filter((r): r is [string, ProgressJson] => typeof r[1] === "object" && r[1] !== null);
  if (busy.length === 0) return [];
  const width = Math.max(...busy.map(([who]) => who.length));
  return ["", "IN PROGRESS", ...busy.map(([who, p]) => `${who.padEnd(width)}  ${progressBar(p)}`)];
}

function tasksTable(tasks: Json[]): string {
  return table(
    ["TASK", "STATE", "POOL", "REPLICA/QUEUE", "TOKENS", "OUTCOME"],
    tasks.map((t) => [
      str(t["task_id"]),
      str(t["state"]),
      str(t["pool_id"]),
      t["replica_id"] ? str(t["replica_id"]) : t["queue_position"] !== undefined ? `#${Number(t["queue_position"]) + 1}` : "",
      str(t["tokens_out"]),
      str(t["outcome"]),
    ]),
  );
}

/** Runs one of the read commands and prints its answer. */
export async function runStatusCommand(command: "status" | "tasks" | "cancel" | "verify", o: StatusOptions, args: string[]): Promise<void> {
  if (command === "verify") return runVerify(o, args);
  if (command === "cancel") {
    const id = args[0];
    if (!id || args.length > 1) throw new Error("which task: llorch cancel TASK_ID");
    await askEdge(o, `/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    process.stdout.write(o.json ? `${JSON.stringify({ task_id: id, canceled: true })}\n` : `cancelled ${id}\n`);
    return;
  }
  if (command === "tasks") {
    const body = await askEdge(o, `/v1/tasks?limit=1000${o.state ? `&state=${o.state}` : ""}`);
    process.stdout.write(o.json ? `${JSON.stringify(body)}\n` : `${tasksTable(list<Json>(body["tasks"]))}\n`);
    return;
  }
  const report = await statusReport(o);
  process.stdout.write(o.json ? `${JSON.stringify(report.json)}\n` : `${report.text}\n`);
}
