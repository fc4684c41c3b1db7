/**
 * The processes one bench run starts, by name: llorch components from the
 * compiled CLI with their logs in files (so this process relays nothing and
 * stays out of what is measured), and whatever else a setup spawns (the fake
 * engine, nginx). Stops each once; stopAll at the end stops what is left.
 */
import type { ChildProcess } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { launchLlorch, stopProcess, type LaunchedProcess, type ReadyEvent } from "../../cli/process-launcher.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";

const LLORCH = join(projectRoot(), "dist", "cli", "llorch.js");

/** A free loopback port for a program that cannot report the one it bound (nginx, the fake engine's process). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Waits until `url` answers 200 (a process that announces nothing). */
export async function untilAnswers(url: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return;
    if (Date.now() > until) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class BenchProcesses {
  private readonly procs: LaunchedProcess[] = [];

  constructor(readonly logDir: string) {}

  /** `llorch <args>` as `name`, with its log in logDir/<name>.log; resolves once it is ready. */
  launch = async (name: string, args: string[], nodeArgs: string[] = []): Promise<ReadyEvent> => {
    const p = launchLlorch(name, args, { script: LLORCH, nodeArgs, logFile: join(this.logDir, `${name}.log`) });
    this.procs.push(p);
    return p.ready;
  };

  /** A process this bench spawned itself, stopped like the others. */
  adopt(name: string, child: ChildProcess): void {
    const exited = new Promise<number | string>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? child.signalCode ?? -1);
      else child.once("exit", (code, signal) => resolve(code ?? signal ?? -1));
    });
    this.procs.push({ name, child, ready: Promise.resolve({ event: "ready" }), exited, lines: [] });
  }

  pidOf = (name: string): number => {
    const pid = this.procs.find((p) => p.name === name)?.child.pid;
    if (pid === undefined) throw new Error(`no process ${name}`);
    return pid;
  };

  stop = async (name: string): Promise<void> => {
    const p = this.procs.find((x) => x.name === name);
    if (p) await stopProcess(p, 10_000);
  };

  async stopAll(): Promise<void> {
    await Promise.all([...this.procs].reverse().map((p) => stopProcess(p, 10_000)));
  }
}
