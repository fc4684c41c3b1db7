import { spawn, spawnSync } from "node:child_process";

/**
 * Metric names the metrics contract fixes that promtool's lint would name
 * differently, and what it says of them (the README lists the same).
 */
export const CONTRACT_LINT_EXCEPTIONS: Readonly<Record<string, string>> = {
  latency_first_token_ms: "metric names should not contain abbreviated units",
  latency_decode_ms: "metric names should not contain abbreviated units",
};

/**
 * Where Debian's `prometheus` package put a tool (promtool, prometheus), or
 * LLORCH_PROMTOOL / LLORCH_PROMETHEUS. Throws, never skips: a metrics test
 * that passed without its tool would say nothing.
 */
export function prometheusTool(name: "promtool" | "prometheus"): string {
  const path = process.env[`LLORCH_${name.toUpperCase()}`] || name;
  const probe = spawnSync(path, ["--version"], { stdio: "ignore" });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      `${name} not found (${path}): install Debian's prometheus package (apt-get install prometheus; .ci/run does it when missing)`,
    );
  }
  return path;
}

/** Runs `promtool check metrics` on an exposition; what it flags, as "name problem" lines (empty when clean). */
export async function promtoolCheckMetrics(text: string): Promise<string[]> {
  const child = spawn(prometheusTool("promtool"), ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stdin.end(text);
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  // 0: clean; 3: lint problems, one per line; anything else (1: it could not parse the text) is a failure of its own.
  if (code !== 0 && code !== 3) throw new Error(`promtool check metrics exited ${code}: ${out}`);
  return out.split("\n").filter((l) => l.trim() !== "");
}

/** promtool's findings less the contract's fixed names. */
export function lintProblemsBeyondContract(findings: readonly string[]): string[] {
  return findings.filter((line) => {
    const [name, ...rest] = line.split(" ");
    return CONTRACT_LINT_EXCEPTIONS[name!] !== rest.join(" ");
  });
}
