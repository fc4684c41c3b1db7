// The operator console: plain browser JavaScript over the public API (no
// framework, no build step, nothing fetched from elsewhere). It polls the
// listing endpoints once a second and streams the playground over SSE.

const POLL_MS = 1000;
/** Catalog and model lists change rarely: every this many polls. */
const SLOW_EVERY = 5;
const KEY_STORAGE = "llorch-api-key";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- API access

/** The API key lives in this tab's session only: never in localStorage, never in a URL. */
function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: headers(init.headers ?? {}) });
  if (res.status === 401 || res.status === 403) throw new ConsoleError("the API needs a valid key: enter it above");
  const text = await res.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new ConsoleError(body?.message ?? `${init.method ?? "GET"} ${path}: HTTP ${res.status}`);
  return body;
}

class ConsoleError extends Error {}

// ---------------------------------------------------------------- rendering helpers

/** A table row from cells: strings become text (never HTML), nodes are appended as they are. */
function row(cells, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else if (cell && typeof cell === "object") {
      td.textContent = cell.text;
      if (cell.className) td.className = cell.className;
    } else td.textContent = cell ?? "";
    tr.append(td);
  }
  return tr;
}

function fill(tableId, rows) {
  $(tableId)
    .querySelector("tbody")
    .replaceChildren(...rows);
}

const stateCell = (state) => ({ text: state, className: `state-${state}` });
const num = (text) => ({ text: String(text), className: "num" });

function bytes(n) {
  if (n === undefined || n === null) return "";
  const gib = n / 2 ** 30;
  return gib >= 1 ? `${gib.toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

function ms(n) {
  if (n === undefined || n === null) return "";
  return n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${Math.round(n)} ms`;
}

/**
 * A state with the progress of the work behind it (a download, a verify, a
 * load: pool health's and the catalog's progress objects): a bar when the
 * total is known, and "downloading b.gguf 45% (1.2 GiB / 2.6 GiB)".
 */
function withProgress(state, progress) {
  const cell = document.createElement("span");
  cell.className = `state-${state}`;
  cell.textContent = state;
  if (!progress) return cell;
  const bar = document.createElement("progress");
  const total = progress.bytes_total;
  const done = progress.bytes_done ?? 0;
  if (total) {
    bar.max = total;
    bar.value = Math.min(done, total);
  }
  const amounts = total
    ? ` ${Math.floor((100 * Math.min(done, total)) / total)}% (${bytes(done)} / ${bytes(total)})`
    : done
      ? ` ${bytes(done)}`
      : "";
  const label = document.createElement("span");
  label.className = "progress-label";
  label.textContent = `${progress.phase}${progress.subject ? ` ${progress.subject}` : ""}${amounts}`;
  cell.append(" ", bar, " ", label);
  return cell;
}

function setStatus(text, bad = false) {
  const el = $("status");
  el.textContent = text;
  el.className = bad ? "status bad" : "status";
}

// ---------------------------------------------------------------- pools and replicas

/** Replicas seen before and missing now are shown as gone, so a sidecar that died does not silently vanish. */
const seenReplicas = new Map();

async function refreshPools() {
  const { pools } = await api("/v1/pools");
  const healths = await Promise.all(pools.map((p) => api(`/v1/pools/${encodeURIComponent(p.id)}/health`).then((h) => [p.id, h])));
  const reloads = new Map(healths.map(([poolId, h]) => [poolId, h.metrics.reload_progress]));
  fill(
    "pools",
    pools.map((p) =>
      row([
        p.id,
        p.engine,
        p.model_ref,
        withProgress(p.draining ? "draining" : p.ready ? "ready" : p.live ? "loading" : "unready", reloads.get(p.id)),
        num(`${p.slots_total - p.slots_free} / ${p.slots_total}`),
        num(`${p.queued_interactive ?? 0} / ${p.queued_batch ?? 0}`),
        num(p.predicted_wait_ms === undefined ? "not measured yet" : ms(p.predicted_wait_ms)),
      ]),
    ),
  );
  const now = new Set();
  for (const [poolId, h] of healths) {
    for (const r of h.metrics.replicas ?? []) {
      now.add(r.replica_id);
      seenReplicas.set(r.replica_id, { ...r, pool_id: poolId });
    }
  }
  const rows = [...seenReplicas.values()]
    .sort((a, b) => (a.replica_id < b.replica_id ? -1 : 1))
    .map((r) => {
      const gone = !now.has(r.replica_id);
      return row(
        [
          r.replica_id,
          r.pool_id,
          gone ? stateCell("gone") : withProgress(r.state, r.progress),
          num(gone ? "" : `${r.slots_total - r.slots_free} / ${r.slots_total}`),
          r.model_ref,
          r.engine_version,
          r.device_mask ?? "",
          num(r.vram_total_bytes === undefined ? "" : `${bytes(r.vram_free_bytes)} / ${bytes(r.vram_total_bytes)}`),
          gone ? "left the pool (deregistered or unreachable)" : (r.last_error ?? ""),
        ],
        gone ? "gone" : undefined,
      );
    });
  fill("replicas", rows);
}

// ---------------------------------------------------------------- tasks

function tokensPerSecond(t, now) {
  if (t.first_token_ms === undefined || t.tokens_out < 2) return "";
  const end = t.finished_ms ?? now;
  const decodeMs = end - t.admitted_ms - t.first_token_ms;
  return decodeMs > 0 ? (t.tokens_out / (decodeMs / 1000)).toFixed(1) : "";
}

function transcriptLink(id) {
  if (!id) return "";
  const a = document.createElement("a");
  a.href = "#";
  a.textContent = "view";
  a.addEventListener("click", (e) => {
    e.preventDefault();
    void showTranscript(id);
  });
  return a;
}

async function showTranscript(id) {
  const artifact = await api(`/v1/artifacts/${id}`);
  $("transcript-text").textContent = artifact.content?.sse ?? JSON.stringify(artifact.content, null, 2);
  $("transcript").showModal();
}

async function refreshTasks() {
  const [live, finished] = await Promise.all([api("/v1/tasks?limit=100"), api("/v1/tasks?state=finished&limit=20")]);
  const now = Date.now();
  fill(
    "tasks",
    [...live.tasks, ...finished.tasks].map((t) =>
      row([
        t.task_id.slice(0, 8),
        stateCell(t.state === "finished" && !isStop(t.outcome) ? "failed" : t.state),
        t.replica_id ? `${t.pool_id} / ${t.replica_id}` : t.pool_id + (t.queue_position !== undefined ? ` (#${t.queue_position + 1})` : ""),
        t.model_ref ?? "",
        num(t.tokens_out),
        num(tokensPerSecond(t, now)),
        num(ms(t.first_token_ms)),
        t.outcome ?? "",
        transcriptLink(t.trace_artifact_id),
      ]),
    ),
  );
}

const isStop = (outcome) => ["max_tokens", "eos", "stop", "stop_word", "canceled", ""].includes(outcome ?? "");

// ---------------------------------------------------------------- catalog and models

/** A verification is running: the catalog is read every poll until it ends, so its bar moves. */
let verifying = false;

async function refreshCatalog() {
  const { models } = await api("/v1/catalog/models?limit=100");
  verifying = models.some((m) => m.verification?.progress);
  fill(
    "catalog",
    models.map((m) => {
      const v = m.verification;
      const verification = v ? `${v.status}${v.reason && v.reason !== "ok" ? ` (${v.reason})` : ""}` : "not verified";
      return row([m.id, m.state, m.digest, withProgress(verification, v?.progress)]);
    }),
  );
}

async function refreshModels() {
  const caps = await api("/v1/capabilities");
  const select = $("pg-model");
  const chosen = select.value;
  const options = (caps.served_models ?? [])
    .filter((m) => (m.workloads ?? ["completion"]).includes("completion"))
    .map((m) => {
      const o = document.createElement("option");
      o.value = JSON.stringify({ model_ref: m.model_ref, engine: m.engine, ctx: m.ctx_max });
      o.textContent = `${m.model_ref} (${m.engine})`;
      return o;
    });
  select.replaceChildren(...options);
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

// ---------------------------------------------------------------- playground

let running;

/** Reads an SSE body frame by frame; `onFrame` gets each event name and its parsed data. */
async function readSse(body, onFrame) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (event && data) onFrame(event, JSON.parse(data));
    }
  }
}

async function startPlayground(e) {
  e.preventDefault();
  if (!$("pg-model").value) return;
  const model = JSON.parse($("pg-model").value);
  const maxTokens = Math.max(1, Number($("pg-max-tokens").value) || 64);
  const task = {
    task_id: crypto.randomUUID(),
    session_id: crypto.randomUUID(),
    workload: "completion",
    model_ref: model.model_ref,
    engine: model.engine,
    ctx: Math.max(maxTokens, Math.min(model.ctx || 4096, 4096)),
    priority: "interactive",
    prompt: $("pg-prompt").value,
    max_tokens: maxTokens,
    deadline_ms: 600000,
  };
  const out = $("pg-output");
  out.textContent = "";
  $("pg-state").textContent = "admitting…";
  $("pg-run").disabled = true;
  $("pg-cancel").disabled = false;
  running = task.task_id;
  try {
    await api("/v1/tasks", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(task) });
    const res = await fetch(`/v1/tasks/${task.task_id}/stream`, { headers: headers({ Accept: "text/event-stream" }) });
    await readSse(res.body, (event, data) => {
      if (event === "started") $("pg-state").textContent = `started (queue position ${data.queue_position})`;
      else if (event === "token") out.textContent += data.t;
      else if (event === "end")
        $("pg-state").textContent = `ended: ${data.stop_reason ?? "done"}, ${data.tokens_out} tokens in ${ms(data.decode_time_ms)}`;
      else if (event === "error") $("pg-state").textContent = `failed: ${data.code}: ${data.message}`;
    });
  } catch (err) {
    $("pg-state").textContent = `failed: ${err.message}`;
  } finally {
    running = undefined;
    $("pg-run").disabled = false;
    $("pg-cancel").disabled = true;
  }
}

async function cancelPlayground() {
  if (!running) return;
  await api(`/v1/tasks/${running}/cancel`, { method: "POST" });
}

// ---------------------------------------------------------------- the loop

let tick = 0;

async function poll() {
  const slow = tick++ % SLOW_EVERY === 0;
  try {
    await Promise.all([
      refreshPools(),
      refreshTasks(),
      ...(slow || verifying ? [refreshCatalog()] : []),
      ...(slow ? [refreshModels()] : []),
    ]);
    setStatus(`updated ${new Date().toLocaleTimeString()}`);
  } catch (err) {
    setStatus(err instanceof ConsoleError ? err.message : `cannot reach the edge: ${err.message}`, true);
  }
}

function init() {
  $("api-key").value = apiKey();
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    tick = 0;
    void poll();
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    $("api-key").value = "";
  });
  $("playground").addEventListener("submit", (e) => void startPlayground(e));
  $("pg-cancel").addEventListener("click", () => void cancelPlayground());
  void poll();
  setInterval(() => void poll(), POLL_MS);
}

init();
