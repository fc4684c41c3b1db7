import { connect, type Socket } from "node:net";
import { TestSystem } from "../support/system.js";
import { auth, rssOf, sleep, submit, type Scenario } from "./chaos-kit.js";
import { fuzzRequests } from "./fuzz-scenario.js";

// Clients that are wrong (fuzz), slow on purpose (slowloris) or never read.

const KEY = "chaos-key";

async function withSystem<T>(body: (sys: TestSystem) => Promise<T>, tokensPerSecond = 0): Promise<T> {
  const sys = await TestSystem.start({ apiKey: KEY, workers: [{ replica: "a", slots: 4, tokensPerSecond }] });
  try {
    return await body(sys);
  } finally {
    await sys.stop();
  }
}

export const fuzz =
  (count: number): Scenario =>
  () =>
    withSystem(async (sys) => {
      const started = Date.now();
      const f = await fuzzRequests(sys.edgeUrl, KEY, count);
      const statuses = [...f.byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}:${n}`);
      const top = [...f.problems].sort((a, b) => b[1] - a[1]).slice(0, 3);
      for (const [p, n] of top) console.error(`  fuzz problem x${n}: ${p}`);
      return {
        scenario: `${f.sent} fuzzed requests over every operation`,
        held: f.problems.size === 0,
        figures: `${f.by5xx} 5xx other than typed 503, ${[...f.problems.values()].reduce((a, b) => a + b, 0)} answers off the contract; ${statuses.join(" ")}; ${Math.round(f.sent / ((Date.now() - started) / 1000))} req/s`,
      };
    });

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** A socket that counts when the server closed it. */
function slowSocket(url: string, first: string, closedAt: Map<Socket, number>): Socket {
  const socket = connect(hostPort(url));
  socket.on("error", () => undefined);
  socket.on("close", () => closedAt.set(socket, Date.now()));
  socket.write(first);
  return socket;
}

/** 100 connections trickling headers and 100 trickling a body: the edge closes them, and serves others meanwhile. */
export const slowloris: Scenario = () =>
  withSystem(async (sys) => {
    const closedAt = new Map<Socket, number>();
    const started = Date.now();
    const headers = Array.from({ length: 100 }, () => slowSocket(sys.edgeUrl, "GET /healthz HTTP/1.1\r\nHost: x\r\n", closedAt));
    const bodies = Array.from({ length: 100 }, () =>
      slowSocket(
        sys.edgeUrl,
        `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{`,
        closedAt,
      ),
    );
    let worstMs = 0;
    const drip = setInterval(() => {
      for (const s of headers) if (!s.destroyed) s.write("X-A: b\r\n");
      for (const s of bodies) if (!s.destroyed) s.write(" ");
    }, 1000);
    for (let waited = 0; waited < 45_000 && closedAt.size < 200; waited += 1000) {
      const t0 = Date.now();
      await fetch(`${sys.edgeUrl}/healthz`);
      worstMs = Math.max(worstMs, Date.now() - t0);
      await sleep(1000);
    }
    clearInterval(drip);
    const secs = (set: Socket[]) => {
      const times = set.map((s) => closedAt.get(s)).filter((v): v is number => v !== undefined);
      return times.length
        ? `${times.length}/100 closed, last after ${Math.round((Math.max(...times) - started) / 1000)} s`
        : "0/100 closed";
    };
    for (const s of [...headers, ...bodies]) s.destroy();
    return {
      scenario: "slowloris: 100 trickled headers + 100 trickled bodies",
      held: closedAt.size >= 200 && worstMs < 2000,
      figures: `headers ${secs(headers)}; bodies ${secs(bodies)}; /healthz meanwhile at worst ${worstMs} ms`,
    };
  });

/** 20 clients open long streams and never read: the edge's memory stays bounded and others are served. */
export const nonReading: Scenario = () =>
  withSystem(async (sys) => {
    const before = rssOf(sys.edge.child.pid);
    const sockets: Socket[] = [];
    let closedByEdge = 0;
    for (let i = 0; i < 20; i++) {
      const taskId = await submit(sys, KEY, { max_tokens: 8000, ctx: 8192 });
      const socket = connect(hostPort(sys.edgeUrl));
      socket.on("error", () => undefined);
      socket.on("close", () => closedByEdge++);
      const headers = Object.entries({ ...auth(KEY), Accept: "text/event-stream" }).map(([k, v]) => `${k}: ${v}\r\n`);
      socket.write(`GET /v1/tasks/${taskId}/stream HTTP/1.1\r\nHost: x\r\n${headers.join("")}\r\n`);
      socket.pause();
      sockets.push(socket);
    }
    await sleep(8000);
    const after = rssOf(sys.edge.child.pid);
    const t0 = Date.now();
    const probe = await fetch(`${sys.edgeUrl}/healthz`);
    const probeMs = Date.now() - t0;
    for (const s of sockets) s.destroy();
    const growthMb = (after - before) / 2 ** 20;
    return {
      scenario: "20 clients never reading long streams",
      held: growthMb < 200 && probe.status === 200,
      figures: `edge RSS ${Math.round(before / 2 ** 20)} -> ${Math.round(after / 2 ** 20)} MB; ${closedByEdge}/20 closed by the edge; /healthz ${probe.status} in ${probeMs} ms`,
    };
  });
