/**
 * The engine every setup streams from: the llama.cpp fake
 * (test/fakes/llamacpp-fake-process.ts, compiled) as a process of its own, at
 * zero delay with one socket write per token (--paced), serving counted
 * tokens, with enough slots for the widest phase. The bench changes its
 * behaviour over IPC (hold streams open after their first token for the
 * memory phase).
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import type { FakeLlamaCppBehaviour } from "../fakes/llamacpp-fake.js";
import { freePort, untilAnswers, type BenchProcesses } from "./bench-procs.js";

const SCRIPT = join(projectRoot(), "dist", "test", "fakes", "llamacpp-fake-process.js");

export interface FakeEngine {
  url: string;
  pid: number;
  /** Behaviour for requests from now on; null puts a field back to unset. */
  set(patch: { [K in keyof FakeLlamaCppBehaviour]?: FakeLlamaCppBehaviour[K] | null }): Promise<void>;
}

export interface FakeEngineOptions {
  /** The longest stream any phase asks for. */
  tokens: number;
  slots: number;
  ctx: number;
}

export async function startFakeEngine(procs: BenchProcesses, opts: FakeEngineOptions): Promise<FakeEngine> {
  const port = await freePort();
  const log = openSync(join(procs.logDir, "fake-engine.log"), "a");
  const args = [
    SCRIPT,
    "--port",
    String(port),
    "--tokens",
    String(opts.tokens),
    "--slots",
    String(opts.slots),
    "--ctx",
    String(opts.ctx),
    "--paced",
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", log, log, "ipc"] });
  closeSync(log);
  procs.adopt("fake-engine", child);
  const url = `http://127.0.0.1:${port}`;
  await untilAnswers(`${url}/health`);
  return {
    url,
    pid: child.pid!,
    set: (patch) =>
      new Promise((resolve, reject) => {
        child.once("message", () => resolve());
        child.send(patch, (err) => err && reject(err));
      }),
  };
}
