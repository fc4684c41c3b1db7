import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { LLORCH } from "../support/system.js";
import { upBanner } from "../support/up-banner.js";

// `kill -9` of `llorch up` gives it no chance to stop its children: each of
// them notices on its own (the IPC channel to its parent closes) and stops,
// so nothing is left running and every port is free again.

/** Pids whose parent is `ppid`, from /proc. */
function childrenOf(ppid: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        // The command name may hold spaces and parentheses: the fields after the last ")" are plain.
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const ppidField = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
        return Number(ppidField) === ppid ? [Number(d)] : [];
      } catch {
        return [];
      }
    });
}

/** Gone, or a zombie nobody reaped yet (this container's init may not): either way it runs nothing. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not true after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("kill -9 of llorch up: core, the edge and the sidecars stop on their own and free their ports", async (t) => {
  const up = spawn(
    process.execPath,
    [LLORCH, "up", "--quiet", "--core-port", "0", "--edge-port", "0", "--workers", "2", "--tokens-per-second", "0"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const children: number[] = [];
  t.teardown(() => {
    up.kill("SIGKILL");
    for (const pid of children) if (running(pid)) process.kill(pid, "SIGKILL");
  });
  // No timeout of its own: ava's applies.
  const out = await upBanner(up, { timeoutMs: 0 });
  const addresses = [...out.matchAll(/(?:http:\/\/)?(127\.0\.0\.1):(\d+)/g)].map((m) => ({ host: m[1]!, port: Number(m[2]) }));
  const ports = [...new Set(addresses.map((a) => a.port))];
  t.is(ports.length, 7, `edge, core and two sidecars, and the metrics ports of core and both sidecars: ${out}`);
  children.push(...childrenOf(up.pid!));
  t.is(children.length, 4, "up runs each component as a process of its own");
  for (const port of ports) t.false(await portFree("127.0.0.1", port), `port ${port} is in use while up runs`);

  up.kill("SIGKILL");
  await until("every child of up stopped", () => children.every((pid) => !running(pid)));
  for (const port of ports) t.true(await portFree("127.0.0.1", port), `port ${port} is free again`);
});

test("a process whose parent dies while it is still starting stops as soon as it is up", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "llorch-orphan-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const launcher = pathToFileURL(join(projectRoot(), "dist", "cli", "process-launcher.js")).href;
  // The parent starts core the way up does, says its pid and dies at once, long before core is ready.
  const parentScript = [
    `import { launchLlorch } from ${JSON.stringify(launcher)};`,
    `const core = launchLlorch("core", ["core", "--port", "0", "--catalog-root", ${JSON.stringify(join(dir, "c"))}, "--artifacts-root", ${JSON.stringify(join(dir, "a"))}], { script: ${JSON.stringify(LLORCH)}, nodeArgs: [], keepLines: false });`,
    `process.stdout.write(String(core.child.pid) + "\\n", () => process.kill(process.pid, "SIGKILL"));`,
  ].join("\n");
  const parent = spawn(process.execPath, ["--input-type=module", "-e", parentScript], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  parent.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
  await new Promise((resolve) => parent.once("exit", resolve));
  const pid = Number(out.trim());
  t.true(pid > 0, `the parent said its child's pid: ${out}`);
  t.teardown(() => {
    if (running(pid)) process.kill(pid, "SIGKILL");
  });
  await until("the orphaned core stopped", () => !running(pid), 30_000);
  t.pass();
});
