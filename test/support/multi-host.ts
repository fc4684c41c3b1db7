// The whole system across "hosts" (network namespaces, see netns.ts): core on
// one, an edge on each of two more, a sidecar on each of two GPU hosts, and a
// host for a load balancer. Every gRPC hop is mutual TLS with certificates that
// name the host's address, every process holds a key of its role from one keys
// file, and each listens on its host's address only, as an operator runs them.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { launchLlorch, stopProcess, type LaunchedProcess } from "../../cli/process-launcher.js";
import { createNetns, type NetnsHost, type NetnsNetwork } from "./netns.js";
import { LLORCH, TestSystem, type SystemOptions, type WorkerSpec } from "./system.js";
import { createTestCa, type IssuedCert, type TestCa } from "./test-ca.js";
import { testKeys, writeKeysFile } from "./test-keys.js";

export const CORE_PORT = 50051;
export const WORKER_PORT = 50052;
export const EDGE_PORT = 8080;
/** The hosts, in address order (.2, .3, ...). */
export const HOSTS = ["core", "edge1", "edge2", "gpu1", "gpu2", "lb"] as const;
export type HostName = (typeof HOSTS)[number];

const KEY_SPECS = {
  core: { role: "worker" },
  gpu1: { role: "worker" },
  gpu2: { role: "worker" },
  edge: { role: "client" },
  alice: { role: "client" },
  ops: { role: "admin" },
} as const;

export interface Cluster {
  net: NetnsNetwork;
  sys: TestSystem;
  ca: TestCa;
  /** Another CA, which the cluster does not trust. */
  rogue: TestCa;
  keys: Record<keyof typeof KEY_SPECS, string>;
  keysFile: string;
  /** A temp directory for the test's own files (nginx's prefix). */
  dir: string;
  host(name: HostName): NetnsHost;
  /** Starts an edge (like the system's own, on edge1) on another host. */
  startEdge(name: "edge2"): Promise<LaunchedProcess>;
  /** Another sidecar on `host` that registers with core, with these flags (its certificate, say) added. */
  startSidecar(host: HostName, replica: string, port: number, flags: Record<string, string>): Promise<LaunchedProcess>;
  stop(): Promise<void>;
}

export const tlsFlags = (c: IssuedCert, caFile: string) => ({ "tls-cert": c.cert, "tls-key": c.key, "tls-ca": caFile });

function workerSpec(c: Pick<Fleet, "host" | "ca" | "keysFile">, name: "gpu1" | "gpu2", key: string): WorkerSpec {
  const h = c.host(name);
  return {
    replica: name,
    slots: 1,
    tokensPerSecond: 20,
    wrap: h.wrap,
    env: { LLORCH_KEY: key },
    flags: {
      host: h.ip,
      port: String(WORKER_PORT),
      advertise: `${h.ip}:${WORKER_PORT}`,
      "keys-file": c.keysFile,
      ...tlsFlags(c.ca.issue(name, [`IP:${h.ip}`]), c.ca.cert),
    },
  };
}

/** What every host gets before anything starts: the network, a keys file and the certificates. */
interface Fleet {
  net: NetnsNetwork;
  dir: string;
  ca: TestCa;
  rogue: TestCa;
  keys: Cluster["keys"];
  keysFile: string;
  host(name: HostName): NetnsHost;
  edgeFlags(name: "edge1" | "edge2"): Record<string, string>;
  remove(): void;
}

function fleet(): Fleet {
  const net = createNetns([...HOSTS]);
  const dir = mkdtempSync(join(tmpdir(), "llorch-multi-host-"));
  const ca = createTestCa("fleet");
  const rogue = createTestCa("rogue");
  const { keys, yaml } = testKeys(KEY_SPECS);
  const keysFile = writeKeysFile(dir, yaml);
  const host = (name: HostName) => net.host(name);
  const edgeCert = ca.issue("edge", [`IP:${host("edge1").ip}`, `IP:${host("edge2").ip}`]);
  return {
    net,
    dir,
    ca,
    rogue,
    keys,
    keysFile,
    host,
    edgeFlags: (name) => ({
      host: host(name).ip,
      port: String(EDGE_PORT),
      core: `${host("core").ip}:${CORE_PORT}`,
      "keys-file": keysFile,
      "core-tls-ca": ca.cert,
      "core-tls-cert": edgeCert.cert,
      "core-tls-key": edgeCert.key,
    }),
    remove: () => {
      net.remove();
      ca.remove();
      rogue.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Core on its host, the edge on edge1, a sidecar on each GPU host; the test asks core as an admin with a client certificate. */
function systemOptions(f: Fleet): SystemOptions {
  const ops = f.ca.issue("ops", [`IP:${f.net.outsideIp}`]);
  return {
    coreFlags: {
      host: f.host("core").ip,
      port: String(CORE_PORT),
      "keys-file": f.keysFile,
      ...tlsFlags(f.ca.issue("core", [`IP:${f.host("core").ip}`]), f.ca.cert),
    },
    coreEnv: { LLORCH_KEY: f.keys.core },
    edgeFlags: f.edgeFlags("edge1"),
    edgeEnv: { LLORCH_KEY: f.keys.edge },
    wrap: { core: f.host("core").wrap, edge: f.host("edge1").wrap },
    workers: [workerSpec(f, "gpu1", f.keys.gpu1), workerSpec(f, "gpu2", f.keys.gpu2)],
    ops: { key: f.keys.ops, credentials: credentials.createSsl(readFileSync(f.ca.cert), readFileSync(ops.key), readFileSync(ops.cert)) },
  };
}

const asArgs = (flags: Record<string, string>) => Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v]);

/**
 * Builds the network, issues certificates and keys, and starts the system on it.
 * Its processes die with this one (see netns.ts), and the network goes at exit.
 */
export async function startCluster(): Promise<Cluster> {
  const f = fleet();
  let sys: TestSystem;
  try {
    sys = await TestSystem.start(systemOptions(f));
  } catch (err) {
    f.remove();
    throw err;
  }
  const extra: LaunchedProcess[] = [];
  const launch = async (name: string, h: NetnsHost, args: string[], env: NodeJS.ProcessEnv) => {
    const proc = launchLlorch(name, args, { script: LLORCH, nodeArgs: [], env, wrap: h.wrap });
    extra.push(proc);
    await proc.ready;
    return proc;
  };
  return {
    ...f,
    sys,
    startEdge: (name) => launch(`edge ${name}`, f.host(name), ["edge", ...asArgs(f.edgeFlags(name))], { LLORCH_KEY: f.keys.edge }),
    startSidecar: (h, replica, port, flags) => {
      const ip = f.host(h).ip;
      const all = {
        host: ip,
        port: String(port),
        advertise: `${ip}:${port}`,
        core: sys.coreAddress,
        replica,
        "keys-file": f.keysFile,
        ...flags,
      };
      return launch(`worker ${replica}`, f.host(h), ["worker", ...asArgs(all)], { LLORCH_KEY: f.keys.gpu1 });
    },
    stop: async () => {
      await Promise.all(extra.map((p) => stopProcess(p)));
      await sys.stop();
      f.remove();
    },
  };
}
