import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { READY_FD_ENV } from "../contracts/runtime/ready-signal.js";

export interface ReadyEvent {
  event: "ready";
  address?: string;
  url?: string;
  metrics_address?: string;
  [k: string]: unknown;
}

export interface LaunchedProcess {
  name: string;
  child: ChildProcess;
  /** Resolves with the process's ready announcement (its ready pipe, see ready-signal.ts); rejects if it exits first. */
  ready: Promise<ReadyEvent>;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** Every stdout line so far (JSON log lines) when kept, for tests and post-mortems. */
  lines: string[];
}

export interface LaunchOptions {
  /** The llorch entry script; defaults to the one running now. */
  script?: string;
  /** Node flags for the child; defaults to this process's (so tsx carries over). */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Called with each stdout line (not with logFile). */
  onLine?: (line: string) => void;
  /** Keep stdout lines in `lines` (default true; not with logFile). */
  keepLines?: boolean;
  /**
   * Write the child's log straight to this file instead of piping it through
   * this process: for benchmarks, where relaying every log line would make
   * this process part of what is measured.
   */
  logFile?: string;
  /**
   * A command the child runs under, e.g. `["ip", "netns", "exec", "ns1"]`:
   * it must exec the node process (keeping descriptor 3, the ready pipe), so
   * signals reach node itself.
   */
  wrap?: string[];
}

/** The child's descriptor for its ready announcement: the first after stdin, stdout and stderr. */
const READY_FD = 3;

/**
 * Starts `llorch <command> ...` as a child process and waits for its ready
 * announcement on a pipe of its own, so readiness does not depend on what
 * the log shows (any level, any format).
 */
export function launchLlorch(name: string, args: string[], opts: LaunchOptions = {}): LaunchedProcess {
  const script = opts.script ?? process.argv[1]!;
  const logFd = opts.logFile ? openSync(opts.logFile, "a") : undefined;
  // The IPC channel tells the child when this process dies, even by SIGKILL (parent-watch.ts); nothing is sent on it.
  const command = [...(opts.wrap ?? []), process.execPath, ...(opts.nodeArgs ?? process.execArgv), script, ...args];
  const child = spawn(command[0]!, command.slice(1), {
    // fd 3: the ready pipe; fd 4: the IPC channel.
    stdio: ["ignore", logFd ?? "pipe", "pipe", "pipe", "ipc"],
    env: { ...process.env, ...opts.env, [READY_FD_ENV]: String(READY_FD) },
  });
  child.channel?.unref();
  if (logFd !== undefined) closeSync(logFd);
  const lines: string[] = [];
  let markReady: (e: ReadyEvent) => void = () => {};
  let failReady: (e: Error) => void = () => {};
  const ready = new Promise<ReadyEvent>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  createInterface({ input: child.stdio[READY_FD] as Readable }).once("line", (line) => {
    try {
      markReady(JSON.parse(line) as ReadyEvent);
    } catch {
      failReady(new Error(`${name} announced readiness in a form this launcher does not read: ${line.slice(0, 200)}`));
    }
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    stderr.push(s);
    if (stderr.length > 200) stderr.shift();
  });
  if (!opts.logFile) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (opts.keepLines !== false) lines.push(line);
      opts.onLine?.(line);
    });
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      failReady(new Error(`${name} exited (${code ?? signal}) before it was ready: ${stderr.join("").trim().slice(-2000)}`));
      resolve(code ?? signal ?? -1);
    });
  });
  return { name, child, ready, exited, lines };
}

/** Asks a process to stop (SIGTERM), and insists (SIGKILL) after `graceMs`. */
export async function stopProcess(p: LaunchedProcess, graceMs = 3_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), graceMs);
  await p.exited;
  clearTimeout(timer);
}
