import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prometheusTool } from "./promtool.js";

/** One sample of an instant query: its labels and value. */
export interface PromSample {
  metric: Record<string, string>;
  /** [unix seconds, value as text] */
  value: [number, string];
}

/** A real Prometheus (Debian's binary) on an ephemeral loopback port, with its data in a directory of its own. */
export class TestPrometheus {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
    private readonly output: () => string,
  ) {}

  /** Starts Prometheus on `config` (YAML text) and waits until it is ready. */
  static async start(config: string): Promise<TestPrometheus> {
    const dir = mkdtempSync(join(tmpdir(), "llorch-prometheus-"));
    const file = join(dir, "prometheus.yml");
    writeFileSync(file, config);
    const port = await freeLoopbackPort();
    const args = [`--config.file=${file}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`];
    const child = spawn(prometheusTool("prometheus"), args, { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => (log = (log + s).slice(-8_000)));
    const prom = new TestPrometheus(`http://127.0.0.1:${port}`, child, dir, () => log);
    try {
      await prom.until(async () => (await fetch(`${prom.url}/-/ready`).catch(() => undefined))?.ok === true, "Prometheus ready");
    } catch (err) {
      await prom.stop();
      throw err;
    }
    return prom;
  }

  /** An instant query, at `time` (unix seconds) or now. */
  async query(expr: string, time?: number): Promise<PromSample[]> {
    const params = new URLSearchParams({ query: expr, ...(time === undefined ? {} : { time: String(time) }) });
    const res = await fetch(`${this.url}/api/v1/query?${params.toString()}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== "success") throw new Error(`query ${expr}: ${body.error ?? res.status}`);
    if (body.data?.resultType !== "vector") throw new Error(`query ${expr}: a ${body.data?.resultType}, not an instant vector`);
    return body.data.result;
  }

  /** The single value of a query that sums to one sample, or undefined when it has none. */
  async scalar(expr: string, time?: number): Promise<number | undefined> {
    const [sample] = await this.query(expr, time);
    return sample === undefined ? undefined : Number(sample.value[1]);
  }

  /** Polls `check` every 200 ms until it holds; throws with Prometheus's log after `timeoutMs`. */
  async until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; Prometheus said: ${this.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A port nothing listens on now (Prometheus takes no port 0, and says nothing of the one it would pick). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
