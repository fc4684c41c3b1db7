// A stand-in engine process for the supervisor tests: an HTTP server with a
// llama-server-like GET /health that answers 503 while "loading" and 200 (or
// --ready-status) afterwards, and that can crash on cue.
//
// Standalone and written as plain JavaScript that is also valid TypeScript
// (no imports from the project, no type annotations), so it runs either as
//   node --import tsx test/fakes/fake-engine-process.ts --port N [flags]
// or, copied to a .mjs file, as plain `node fake-engine-process.mjs ...`,
// which the tests do: it starts in a fraction of the time tsx needs.
//
// --port N               port on 127.0.0.1 (required)
// --load-ms M            503 "Loading model" for M ms after the port opened (default 0)
// --ready-status S       status of /health once loaded (default 200; e.g. 429 busy)
// --crash-after-ms K     exit K ms after the process started, printing a line to stderr first
// --exit-code C          exit code of that crash (default 1)
// --crash-count-file F   with --max-crashes: crash only while F (a counter) is below it,
// --max-crashes N        so "crash once, then run fine" survives restarts
// --ignore-sigterm       keep running on SIGTERM (only SIGKILL ends it)
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    "load-ms": { type: "string", default: "0" },
    "ready-status": { type: "string", default: "200" },
    "crash-after-ms": { type: "string" },
    "exit-code": { type: "string", default: "1" },
    "crash-count-file": { type: "string" },
    "max-crashes": { type: "string" },
    "ignore-sigterm": { type: "boolean", default: false },
  },
  strict: true,
});

// Defaults instead of annotations keep this valid JavaScript (both are strings).
function int(name = "", text = "") {
  if (!/^\d+$/.test(text)) {
    process.stderr.write(`fake-engine: --${name} needs a non-negative integer, got ${text}\n`);
    process.exit(2);
  }
  return Number(text);
}

const port = int("port", values.port ?? "");
const loadMs = int("load-ms", values["load-ms"]);
const readyStatus = int("ready-status", values["ready-status"]);
const exitCode = int("exit-code", values["exit-code"]);
const crashAfterMs = values["crash-after-ms"] === undefined ? undefined : int("crash-after-ms", values["crash-after-ms"]);
const maxCrashes = values["max-crashes"] === undefined ? undefined : int("max-crashes", values["max-crashes"]);
const countFile = values["crash-count-file"];
/** The "model load" runs from the moment the port is open, so a slow process start cannot skip the 503s. */
let listeningAt = Number.POSITIVE_INFINITY;

/** Whether this run may crash, counting crashes across restarts in the counter file. */
function mayCrash() {
  if (countFile === undefined || maxCrashes === undefined) return true;
  const count = existsSync(countFile) ? Number(readFileSync(countFile, "utf8")) || 0 : 0;
  if (count >= maxCrashes) return false;
  writeFileSync(countFile, String(count + 1));
  return true;
}

const server = createServer((req, res) => {
  if (req.method !== "GET" || req.url !== "/health") {
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: 404, message: "not found" } }));
    return;
  }
  if (Date.now() - listeningAt < loadMs) {
    res.writeHead(503, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: 503, message: "Loading model", type: "unavailable_error" } }));
    return;
  }
  res.writeHead(readyStatus, { "content-type": "application/json" });
  res.end(JSON.stringify(readyStatus === 200 ? { status: "ok" } : { error: { code: readyStatus, message: "busy" } }));
});

server.listen(port, "127.0.0.1", () => {
  listeningAt = Date.now();
  process.stderr.write(`fake-engine: pid ${process.pid} listening on 127.0.0.1:${port}, loading for ${loadMs} ms\n`);
});

if (crashAfterMs !== undefined) {
  setTimeout(() => {
    if (!mayCrash()) return;
    // Pipes are written synchronously on POSIX, so this line is out before the exit.
    process.stderr.write(`fake-engine: CUDA error: out of memory (simulated), exiting with code ${exitCode}\n`);
    process.exit(exitCode);
  }, crashAfterMs);
}

if (values["ignore-sigterm"]) {
  process.on("SIGTERM", () => process.stderr.write("fake-engine: ignoring SIGTERM\n"));
}
