import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

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
  /** Resolves with the process's `event: "ready"` log line; rejects if it exits first. */
  ready: Promise<ReadyEvent>;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** Every stdout line so far (JSON log lines), for tests and post-mortems. */
  lines: string[];
}

/**
 * Starts `llorch <command> ...` as a child process with the same Node and
 * loader flags as this one (so it works from dist/ and under tsx alike) and
 * watches its JSON log for the ready line.
 */
export function launchLlorch(
  name: string,
  args: string[],
  opts: { script?: string; nodeArgs?: string[]; onLine?: (line: string) => void; env?: NodeJS.ProcessEnv; keepLines?: boolean } = {},
): LaunchedProcess {
  const script = opts.script ?? process.argv[1]!;
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? process.execArgv), script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  const lines: string[] = [];
  let markReady: (e: ReadyEvent) => void;
  let failReady: (e: Error) => void;
  const ready = new Promise<ReadyEvent>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  const stderr: string[] = [];
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    stderr.push(s);
    if (stderr.length > 200) stderr.shift();
  });
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (opts.keepLines !== false) lines.push(line);
    opts.onLine?.(line);
    if (line.includes('"event":"ready"')) {
      try {
        markReady(JSON.parse(line) as ReadyEvent);
      } catch {
        /* not a log line after all */
      }
    }
  });
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
