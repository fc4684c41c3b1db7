import { launchLlorch, stopProcess, type LaunchedProcess } from "./process-launcher.js";

/**
 * The processes `llorch up` started, stopped together. When an essential one
 * (core, the edge) exits on its own, nothing works any more, so the group
 * stops the rest; a sidecar exiting only leaves its pool short.
 */
export class ProcessGroup {
  private readonly children: LaunchedProcess[] = [];
  private stopping = false;

  /**
   * `exit` ends this process once every child is gone; a child still running
   * `killAfterMs` after it was asked to stop (its shutdown grace and then
   * some) is killed.
   */
  constructor(
    private readonly exit: (code: number) => void,
    private readonly killAfterMs: number,
  ) {}

  launch(name: string, args: string[], opts: { essential: boolean; onLine?: (line: string) => void }): LaunchedProcess {
    const child = launchLlorch(name, args, { onLine: opts.onLine, keepLines: false });
    this.children.push(child);
    void child.exited.then((code) => {
      if (this.stopping) return;
      process.stderr.write(`llorch up: ${name} exited (${code})${opts.essential ? "; stopping everything" : ""}\n`);
      if (opts.essential) void this.stopAll(1);
    });
    return child;
  }

  /** The first call asks every child to stop (SIGTERM: they drain); a second one, while they drain, kills them. */
  async stopAll(code: number): Promise<void> {
    if (this.stopping) {
      for (const child of this.children) if (child.child.exitCode === null) child.child.kill("SIGKILL");
      return;
    }
    this.stopping = true;
    await Promise.all([...this.children].reverse().map((child) => stopProcess(child, this.killAfterMs)));
    this.exit(code);
  }
}
