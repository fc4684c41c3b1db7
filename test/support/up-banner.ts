import type { ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";

/** The last line of the banner `llorch up` prints once every process is ready. */
const BANNER_END = "Stop with Ctrl-C";

/**
 * What a started `llorch up` printed up to and including its banner (and its
 * stderr too with `withStderr`, for the failure message); rejects when it
 * exits first or takes longer than `timeoutMs`.
 */
export function upBanner(
  child: ChildProcessByStdio<null, Readable, Readable>,
  { timeoutMs = 30_000, withStderr = false }: { timeoutMs?: number; withStderr?: boolean } = {},
): Promise<string> {
  let out = "";
  if (withStderr) child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
  return new Promise<string>((resolve, reject) => {
    const timer = timeoutMs > 0 ? setTimeout(() => reject(new Error(`llorch up did not come up: ${out}`)), timeoutMs) : undefined;
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      if (out.includes(BANNER_END)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once("exit", (code) => reject(new Error(`llorch up exited ${code}: ${out}`)));
  });
}
