import test, { type ExecutionContext } from "ava";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { credentials } from "@grpc/grpc-js";
import { launchLlorch, stopProcess, type LaunchedProcess } from "../../cli/process-launcher.js";
import { WorkerServiceClient } from "../../contracts/gen/llama_orch/v1/worker.js";
import { checkResponse } from "../support/openapi-check.js";
import { parseSse } from "../support/sse-parse.js";
import { keyMetadata } from "../support/grpc.js";
import { LLORCH, TestSystem } from "../support/system.js";
import { taskBody } from "../support/task-body.js";
import { createTestCa, opensslMissing, type IssuedCert, type TestCa } from "../support/test-ca.js";

// The whole system over TLS: the edge serves HTTPS, and every gRPC hop (edge to core, sidecar
// to core, core to sidecar) is mutual TLS with certificates of one test CA.
const KEY = "tls-test-key";
const skipped = opensslMissing();

let ca: TestCa;
let rogue: TestCa;
let sys: TestSystem;
const tlsFlags = (c: IssuedCert, caFile: string) => ({ "tls-cert": c.cert, "tls-key": c.key, "tls-ca": caFile });

if (skipped) {
  test.skip(`SKIPPED, no openssl: edge, core and sidecars over mutual TLS; ${skipped}`, () => {});
} else {
  test.before(async () => {
    ca = createTestCa("cluster");
    rogue = createTestCa("rogue");
    const edge = ca.issue("edge");
    const core = ca.issue("core");
    sys = await TestSystem.start({
      apiKey: KEY,
      coreFlags: tlsFlags(core, ca.cert),
      edgeFlags: {
        "tls-cert": edge.cert,
        "tls-key": edge.key,
        "core-tls-ca": ca.cert,
        "core-tls-cert": edge.cert,
        "core-tls-key": edge.key,
      },
      workers: [{ replica: "w1", slots: 2, flags: tlsFlags(ca.issue("w1"), ca.cert) }],
      ops: { key: KEY, credentials: credentials.createSsl(readFileSync(ca.cert), readFileSync(core.key), readFileSync(core.cert)) },
    });
  });
  test.after.always(async () => {
    await sys?.stop();
    ca?.remove();
    rogue?.remove();
  });

  test("a task streams to its end over HTTPS and mutual TLS on every gRPC hop", async (t) => {
    t.regex(sys.edgeUrl, /^https:/);
    t.like(sys.logsOf(sys.core, '"event":"ready"')[0], { transport: "mutual TLS" });
    const body = taskBody({ max_tokens: 5 });
    const admitted = await https(t, "POST", "/v1/tasks", JSON.stringify(body));
    t.is(admitted.status, 202);
    const streamed = await https(t, "GET", `/v1/tasks/${body.task_id as string}/stream`);
    const frames = parseSse(streamed.body);
    t.deepEqual(
      frames.filter((f) => f.event === "token").map((f) => (JSON.parse(f.data.join("\n")) as { i: number }).i),
      [0, 1, 2, 3, 4],
    );
    t.is(frames.at(-1)?.event, "end");
  });

  test("a sidecar whose certificate another CA signed is refused, and core's log says why", async (t) => {
    const proc = await sidecar(t, "impostor", tlsFlags(rogue.issue("impostor"), ca.cert));
    const line = await logLine(sys.core, '"tls_refused"', (l) => l.includes("not signed by this server's --tls-ca"));
    t.regex(
      String(line.msg),
      /^core: TLS handshake from 127\.0\.0\.1:\d+ refused: the client's certificate is not signed by this server's --tls-ca/,
    );
    t.false((await sys.replicas()).some((r) => r.replicaId === "impostor"));
    await logLine(proc, '"registration_lost"', (l) => l.includes("may have refused this sidecar's certificate"));
  });

  test("a sidecar that does not trust core's CA refuses core, and its log says why", async (t) => {
    const proc = await sidecar(t, "wrong-ca", tlsFlags(ca.issue("wrong-ca"), rogue.cert));
    const line = await logLine(proc, '"registration_lost"');
    t.regex(String(line.reason), /TLS with core failed: .*certificate.*core's certificate must be signed by this sidecar's --tls-ca/);
  });

  test("plaintext to a TLS port is refused with a line saying so on both sides", async (t) => {
    const proc = await sidecar(t, "plain", {});
    await logLine(sys.core, '"tls_refused"', (l) => l.includes("the client spoke plaintext to a TLS port"));
    const line = await logLine(proc, '"registration_lost"');
    t.regex(String(line.reason), /this sidecar needs --tls-ca/);
  });

  test("a sidecar answers only clients with a certificate of its CA", async (t) => {
    const w1 = sys.worker("w1");
    const client = new WorkerServiceClient(w1.address, credentials.createSsl(readFileSync(ca.cert)));
    t.teardown(() => client.close());
    const err = await new Promise<Error | null>((resolve) =>
      client.info({}, keyMetadata(KEY), { deadline: Date.now() + 5_000 }, (e) => resolve(e)),
    );
    t.truthy(err, "no client certificate, no call");
    const line = await logLine(w1.proc, '"tls_refused"');
    t.regex(String(line.msg), /sidecar: TLS handshake from 127\.0\.0\.1:\d+ refused: the client presented no certificate/);
  });
}

/** One request to the HTTPS edge, trusting the test CA, checked against the OpenAPI document. */
async function https(t: ExecutionContext, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  const res = await new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
    const headers: Record<string, string> = { Authorization: `Bearer ${KEY}`, ...(body ? { "Content-Type": "application/json" } : {}) };
    const req = request(`${sys.edgeUrl}${path}`, { method, headers, ca: readFileSync(ca.cert) }, (r) => {
      let text = "";
      r.setEncoding("utf8").on("data", (s: string) => (text += s));
      r.on("end", () => resolve({ status: r.statusCode!, headers: r.headers as Record<string, string>, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
  t.deepEqual(checkResponse(method, path, res), [], `${method} ${path} conforms to the OpenAPI document`);
  return res;
}

async function sidecar(t: ExecutionContext, replica: string, flags: Record<string, string>): Promise<LaunchedProcess> {
  const args = [
    "worker",
    "--port",
    "0",
    "--core",
    sys.coreAddress,
    "--replica",
    replica,
    ...Object.entries(flags)
      .flat()
      .map((v, i) => (i % 2 ? v : `--${v}`)),
  ];
  const proc = launchLlorch(replica, args, { script: LLORCH, nodeArgs: [], env: { LLORCH_API_KEY: KEY } });
  t.teardown(() => stopProcess(proc));
  await proc.ready;
  return proc;
}

async function logLine(p: LaunchedProcess, event: string, match: (line: string) => boolean = () => true, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const line = p.lines.find((l) => l.includes(event) && match(l));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    if (Date.now() > end) throw new Error(`${p.name}: no ${event} line within ${timeoutMs} ms; last: ${p.lines.slice(-3).join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
