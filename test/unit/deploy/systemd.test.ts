import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { commandLineProblems, ROLES, type Role } from "../../support/deploy/component-flags.js";
import { commandWords, envTemplate, programsOf, unitFiles, value, values, type UnitFile } from "../../support/deploy/unit-files.js";

const run = promisify(execFile);
const units = unitFiles();

/** Where the units say llorch is installed (README.md, "Hosts with systemd", links it there). */
const LLORCH_BIN = "/usr/local/bin/llorch";

/** Debian's systemd package installs it; .ci/run installs that package where it is missing. */
const ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p));

/** The highest exposure `systemd-analyze security` may rate each unit (0 is locked down, 10 is unprotected). */
const MAX_EXPOSURE: Record<string, number> = { "llorch-core.service": 2, "llorch-edge.service": 2, "llorch-worker.service": 3.5 };

function analyzer(t: ExecutionContext): string | undefined {
  if (!ANALYZE) t.fail("systemd-analyze is not installed (Debian package systemd; .ci/run installs it): the units cannot be verified");
  return ANALYZE;
}

/**
 * A root for `systemd-analyze --root`: this machine's own unit directory (so targets such as
 * network-online.target resolve), the units where an administrator installs them, and an
 * executable at every path their Exec lines name, since verify refuses a unit whose program is
 * missing. Nothing is installed on the machine itself.
 */
function unitRoot(t: ExecutionContext, extra: UnitFile[] = []): string {
  const root = mkdtempSync(join(tmpdir(), "llorch-systemd-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const system = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) => existsSync(join(d, "multi-user.target")));
  if (system) cpSync(system, join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(root, "etc/systemd/system"), { recursive: true });
  for (const unit of [...units, ...extra]) writeFileSync(join(root, "etc/systemd/system", unit.name), unit.text);
  for (const program of programsOf([...units, ...extra])) {
    mkdirSync(join(root, dirname(program)), { recursive: true });
    writeFileSync(join(root, program), "#!/bin/sh\n");
    chmodSync(join(root, program), 0o755);
  }
  return root;
}

async function analyze(tool: string, args: string[]): Promise<{ code: number; output: string }> {
  try {
    // Its warnings go to the console only when told so: where stderr is no terminal it may log them
    // to the journal instead, and a broken unit would then verify in silence.
    const env = { ...process.env, SYSTEMD_LOG_TARGET: "console", SYSTEMD_LOG_LEVEL: "info", SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "" };
    const { stdout, stderr } = await run(tool, args, { env });
    return { code: 0, output: (stdout + stderr).trim() };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}`.trim() };
  }
}

test("deploy/systemd has a unit for core, the edge and a worker", (t) => {
  t.deepEqual(
    units.map((u) => u.name),
    ["llorch-core.service", "llorch-edge.service", "llorch-worker.service"],
  );
});

test("systemd-analyze verify accepts every unit without a warning", async (t) => {
  const tool = analyzer(t);
  if (!tool) return;
  const root = unitRoot(t);
  const { code, output } = await analyze(tool, ["verify", `--root=${root}`, "--man=no", ...units.map((u) => u.name)]);
  t.is(output, "", "verify prints nothing for a unit it has no complaint about");
  t.is(code, 0);
});

test("systemd-analyze verify does complain about a misspelt directive, so its silence above means something", async (t) => {
  const tool = analyzer(t);
  if (!tool) return;
  const broken = {
    ...units[0]!,
    name: "llorch-broken.service",
    text: units[0]!.text.replace(/^ProtectSystem=strict$/m, "ProtectSystm=strict"),
  };
  const root = unitRoot(t, [broken]);
  const { output } = await analyze(tool, ["verify", `--root=${root}`, "--man=no", broken.name]);
  t.regex(output, /Unknown key( name)? 'ProtectSystm'/);
});

test("systemd-analyze security rates every unit's exposure low (core and edge at most 2, the GPU worker 3.5)", async (t) => {
  const tool = analyzer(t);
  if (!tool) return;
  const root = unitRoot(t);
  for (const unit of units) {
    const { output } = await analyze(tool, ["security", "--offline=yes", `--root=${root}`, "--no-pager", unit.name]);
    const level = /Overall exposure level for \S+: ([\d.]+)/.exec(output);
    t.truthy(level, `${unit.name}: ${output.slice(-300)}`);
    t.true(Number(level?.[1]) <= MAX_EXPOSURE[unit.name]!, `${unit.name}: exposure ${level?.[1]}`);
  }
});

test("every unit restarts on failure, reads its keys from an EnvironmentFile, runs as llorch and is hardened", (t) => {
  for (const u of units) {
    const role = u.name.replace(/^llorch-|\.service$/g, "");
    t.is(value(u, "Service", "Restart"), "on-failure", u.name);
    t.deepEqual(values(u, "Service", "EnvironmentFile"), [`/etc/llorch/${role}.env`], u.name);
    t.is(value(u, "Service", "User"), "llorch", u.name);
    for (const [key, expected] of [
      ["NoNewPrivileges", "yes"],
      ["ProtectSystem", "strict"],
      ["ProtectHome", "yes"],
      ["PrivateTmp", "yes"],
      ["CapabilityBoundingSet", ""],
    ] as const)
      t.is(value(u, "Service", key), expected, `${u.name}: ${key}`);
    t.is(value(u, "Install", "WantedBy"), "multi-user.target", u.name);
  }
});

/** The unit's ExecStart as `llorch <role> flags…`, with $LLORCH_ARGS replaced by `args`. */
function execStart(unit: UnitFile, args: string[]): string[] {
  return commandWords(value(unit, "Service", "ExecStart")!).flatMap((w) => (w === "$LLORCH_ARGS" ? args : [w]));
}

test("core's catalog, artifacts and journal, and a worker's model cache, are in the directories systemd makes writable", (t) => {
  const core = units.find((u) => u.name === "llorch-core.service")!;
  const state = `/var/lib/${value(core, "Service", "StateDirectory")}`;
  const coreArgs = execStart(core, []);
  for (const flag of ["catalog-root", "artifacts-root", "journal-root"])
    t.true(coreArgs[coreArgs.indexOf(`--${flag}`) + 1]!.startsWith(`${state}/`), flag);
  const worker = units.find((u) => u.name === "llorch-worker.service")!;
  const cache = `/var/cache/${value(worker, "Service", "CacheDirectory")}`;
  const workerArgs = execStart(worker, []);
  t.is(workerArgs[workerArgs.indexOf("--model-cache") + 1], cache);
});

test("ExecStart runs `llorch <role>` with flags that role has, and every variable it uses is set in the role's env template", (t) => {
  for (const unit of units) {
    const env = envTemplate(values(unit, "Service", "EnvironmentFile")[0]!);
    const words = execStart(unit, []);
    t.is(words[0], LLORCH_BIN, unit.name);
    const role = words[1] as Role;
    t.true(ROLES.includes(role), unit.name);
    for (const [, name] of words.join(" ").matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g))
      t.true(env.set.has(name!), `${unit.name}: ${name} is set in ${env.file}`);
    t.true(env.set.has("LLORCH_ARGS") && env.set.has("LLORCH_KEY"), env.file);
    // The flags as given, then with each example of LLORCH_ARGS the template offers.
    for (const args of [env.set.get("LLORCH_ARGS")!, ...(env.examples.get("LLORCH_ARGS") ?? [])]) {
      const flags = execStart(
        unit,
        args.split(/\s+/).filter((w) => w !== ""),
      ).slice(2);
      t.deepEqual(commandLineProblems(role, flags), [], `${unit.name} with LLORCH_ARGS=${args}`);
    }
  }
});
