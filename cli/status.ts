// `llorch status`, `llorch tasks` and `llorch cancel`: what is running, read
// through the public API only, so they work against a remote edge (`--edge
// URL`, the key from LLORCH_API_KEY) exactly as against a local one.
import { API_KEY_ENV } from "../contracts/runtime/api-key.js";
import { flagHelp, type FlagTable } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice, flagText } from "../contracts/runtime/flag-values.js";

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

export const statusHelp = `llorch status | tasks | cancel TASK_ID — what the system is doing, through the public API

  llorch status            pools, replicas, queues, running tasks and catalog models
  llorch tasks             queued and running tasks (--state finished: the recent finished ones)
  llorch cancel TASK_ID    cancel a task

${flagHelp(STATUS_FLAGS, 22)}

The API key comes from ${API_KEY_ENV} when the edge requires one.
`;

type Json = Record<string, unknown>;

async function get(o: StatusOptions, path: string, init: RequestInit = {}): Promise<Json> {
  const key = process.env[API_KEY_ENV];
  let res: Response;
  try {
    res = await fetch(o.edge + path, { ...init, headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...init.headers } });
  } catch (err) {
    throw new Error(`cannot reach the edge at ${o.edge}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  const body = (text ? JSON.parse(text) : {}) as Json;
  if (!res.ok) throw new Error(`${path}: ${str(body["code"] ?? res.status)}: ${str(body["message"] ?? text)}`);
  return body;
}

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

const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
/** A JSON value as text: scalars as themselves, anything else (which these fields never are) as JSON. */
function str(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

function mib(v: unknown): string {
  return typeof v === "number" ? `${Math.round(v / 2 ** 20)} MiB` : "";
}

async function statusReport(o: StatusOptions): Promise<{ json: Json; text: string }> {
  const pools = list<Json>((await get(o, "/v1/pools"))["pools"]);
  const health = await Promise.all(pools.map((p) => get(o, `/v1/pools/${encodeURIComponent(str(p["id"]))}/health`)));
  const tasks = list<Json>((await get(o, "/v1/tasks?limit=1000"))["tasks"]);
  const models = list<Json>((await get(o, "/v1/catalog/models?limit=1000"))["models"]);
  const replicas = health.flatMap((h, i) =>
    list<Json>((h["metrics"] as Json | undefined)?.["replicas"]).map((r): Json => ({ ...r, pool_id: pools[i]!["id"] })),
  );
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
  ].join("\n");
  return { json: { pools, replicas, tasks, models }, text };
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
export async function runStatusCommand(command: "status" | "tasks" | "cancel", o: StatusOptions, args: string[]): Promise<void> {
  if (command === "cancel") {
    const id = args[0];
    if (!id || args.length > 1) throw new Error("which task: llorch cancel TASK_ID");
    await get(o, `/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });
    process.stdout.write(o.json ? `${JSON.stringify({ task_id: id, canceled: true })}\n` : `cancelled ${id}\n`);
    return;
  }
  if (command === "tasks") {
    const body = await get(o, `/v1/tasks?limit=1000${o.state ? `&state=${o.state}` : ""}`);
    process.stdout.write(o.json ? `${JSON.stringify(body)}\n` : `${tasksTable(list<Json>(body["tasks"]))}\n`);
    return;
  }
  const report = await statusReport(o);
  process.stdout.write(o.json ? `${JSON.stringify(report.json)}\n` : `${report.text}\n`);
}
