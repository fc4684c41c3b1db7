import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client, credentials, makeGenericClientConstructor, status, type ServiceError } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { WorkerServiceService } from "../../contracts/gen/llama_orch/v1/worker.js";
import { errorDetailOf } from "../../contracts/runtime/error-status.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { launchLlorch, stopProcess, type LaunchedProcess } from "../../cli/process-launcher.js";
import { keyMetadata } from "../support/grpc.js";
import { LLORCH } from "../support/system.js";
import { testKeys, writeKeysFile } from "../support/test-keys.js";

const run = promisify(execFile);
const { keys, yaml } = testKeys({ core: { role: "worker" }, alice: { role: "client" }, ops: { role: "admin" } });
const dir = mkdtempSync(join(tmpdir(), "llorch-sidecar-auth-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let sidecar: { address: string; proc: LaunchedProcess };
test.before(async () => {
  const proc = launchLlorch("worker", ["worker", "--port", "0", "--keys-file", writeKeysFile(dir, yaml)], { script: LLORCH, nodeArgs: [] });
  sidecar = { proc, address: (await proc.ready).address! };
});
test.after.always(() => sidecar && stopProcess(sidecar.proc));

interface MethodDefinition {
  path: string;
  responseStream: boolean;
  requestSerialize: (v: unknown) => Buffer;
  requestDeserialize: (b: Buffer) => unknown;
  responseDeserialize: (b: Buffer) => unknown;
}

/** Calls a WorkerService method (every one, unary or streaming) with an empty request; resolves with how it ended. */
function call(method: keyof typeof WorkerServiceService, key?: string): Promise<ServiceError | "ok"> {
  const def = WorkerServiceService[method] as unknown as MethodDefinition;
  const client = new Client(sidecar.address, credentials.createInsecure());
  const request = def.requestDeserialize(Buffer.alloc(0));
  return new Promise<ServiceError | "ok">((resolve) => {
    if (def.responseStream) {
      const s = client.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, request, keyMetadata(key));
      s.on("data", () => {
        s.cancel();
        resolve("ok");
      });
      s.on("error", (e: ServiceError) => resolve(e.code === status.CANCELLED ? "ok" : e));
      s.on("end", () => resolve("ok"));
    } else {
      client.makeUnaryRequest(def.path, def.requestSerialize, def.responseDeserialize, request, keyMetadata(key), (e) =>
        resolve(e ?? "ok"),
      );
    }
  }).finally(() => client.close());
}

const METHODS = Object.keys(WorkerServiceService) as (keyof typeof WorkerServiceService)[];

test("every WorkerService method refuses a call without a key (UNAUTHENTICATED) and with a wrong one", async (t) => {
  t.is(METHODS.length, 9);
  for (const m of METHODS) {
    const missing = await call(m);
    t.is(missing !== "ok" && missing.code, status.UNAUTHENTICATED, m);
    const wrong = await call(m, "made-up-key");
    t.is(wrong !== "ok" && errorDetailOf(wrong)?.code, ErrorCode.ERROR_CODE_FORBIDDEN, m);
  }
});

test("client and admin keys are no worker keys: PERMISSION_DENIED with INSUFFICIENT_ROLE", async (t) => {
  for (const key of [keys.alice, keys.ops]) {
    for (const m of ["submit", "cancel", "loadModel", "evictSession"] as const) {
      const err = await call(m, key);
      t.is(err !== "ok" && err.code, status.PERMISSION_DENIED, m);
      t.is(err !== "ok" && errorDetailOf(err)?.code, ErrorCode.ERROR_CODE_INSUFFICIENT_ROLE, m);
    }
  }
});

test("a worker key (core's) gets through", async (t) => {
  for (const m of ["info", "health", "props", "cancel", "evictSession", "watchHealth", "watchProps"] as const)
    t.is(await call(m, keys.core), "ok", m);
});

test("grpc.health.v1 and reflection stay open for operators' tools", async (t) => {
  const Health = makeGenericClientConstructor(healthService, "Health");
  const health = new Health(sidecar.address, credentials.createInsecure()) as unknown as Client & {
    check(req: { service: string }, cb: (e: ServiceError | null, r: { status: string }) => void): void;
  };
  t.teardown(() => health.close());
  const answer = await new Promise<{ status: string }>((resolve, reject) =>
    health.check({ service: "" }, (e, r) => (e ? reject(e) : resolve(r))),
  );
  t.is(answer.status, "SERVING");
  const buf = join(projectRoot(), "node_modules", ".bin", "buf");
  const { stdout } = await run(
    buf,
    ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", `http://${sidecar.address}`],
    {
      timeout: 20_000,
    },
  );
  t.true(stdout.includes("llama_orch.v1.WorkerService/Submit"));
});

test("a sidecar refuses to listen beyond loopback without a key, and says how to fix it", async (t) => {
  const r = await run(process.execPath, [LLORCH, "worker", "--host", "0.0.0.0", "--port", "0"], {
    env: { ...process.env, LLORCH_API_KEY: "", LLORCH_KEY: "" },
    timeout: 20_000,
  }).then(
    () => ({ code: 0, stderr: "" }),
    (e: { code: number; stderr: string }) => e,
  );
  t.is(r.code, 1);
  t.regex(r.stderr, /refusing to start the sidecar on 0\.0\.0\.0 without an API key: give it --keys-file FILE or set LLORCH_API_KEY/);
});
