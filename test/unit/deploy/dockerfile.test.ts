import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../../../contracts/runtime/project-root.js";
import { dockerfileStages, execForm, stageChain, type Instruction, type Stage } from "../../support/deploy/dockerfile.js";

const root = projectRoot();
const stages = dockerfileStages();
const stageNames = new Set(stages.map((s) => s.name));
/** The two images: the default target (CPU) and the CUDA variant. */
const TARGETS = [stages.at(-1)!.name!, "cuda"];

const all = (chain: Stage[], keyword: string): Instruction[] => chain.flatMap((s) => s.instructions.filter((i) => i.keyword === keyword));
const last = (chain: Stage[], keyword: string): Instruction | undefined => all(chain, keyword).at(-1);

test("the Dockerfile is multi-stage on node:20: a build stage that compiles, images that hold production dependencies only", (t) => {
  t.true(stages.length >= 3);
  for (const s of stages.filter((s) => !stageNames.has(s.from))) t.regex(s.from, /^node:20[.-]/, `stage ${s.name} starts from Node 20`);
  const build = stages.find((s) => s.instructions.some((i) => i.keyword === "RUN" && /\btsc\b/.test(i.args)))!;
  t.truthy(build, "a stage runs tsc");
  t.true(
    build.instructions.some((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args) && !/--omit=dev/.test(i.args)),
    "the build stage installs dev dependencies (the compiler)",
  );
  for (const target of TARGETS) {
    const chain = stageChain(stages, target);
    t.false(chain.includes(build), `${target} does not carry the build stage's node_modules`);
    const modules = all(chain, "COPY").find((i) => /node_modules/.test(i.args));
    const deps = stageChain(stages, modules?.flags["from"]);
    t.true(
      all(deps, "RUN").some((i) => /\bnpm ci\b.*--omit=dev/.test(i.args)),
      `${target}'s node_modules come from npm ci --omit=dev`,
    );
  }
});

test("every npm ci runs from the lockfile: package-lock.json is copied into its stage first", (t) => {
  for (const s of stages) {
    const ci = s.instructions.findIndex((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args));
    if (ci < 0) continue;
    const lock = s.instructions.findIndex((i) => i.keyword === "COPY" && /\bpackage-lock\.json\b/.test(i.args));
    t.true(lock >= 0 && lock < ci, `stage ${s.name}`);
  }
});

test("both images run as a numeric non-root user, start llorch with the role as argument, and declare their health check", (t) => {
  for (const target of TARGETS) {
    const chain = stageChain(stages, target);
    const user = last(chain, "USER")?.args;
    t.regex(user ?? "", /^[1-9]\d*(:\d+)?$/, `${target}: USER ${user} (numeric, so runAsNonRoot can check it)`);
    const workdir = last(chain, "WORKDIR")!.args;
    const entrypoint = execForm(last(chain, "ENTRYPOINT")?.args ?? "");
    t.truthy(entrypoint, `${target}: ENTRYPOINT in exec form, so signals reach llorch`);
    t.deepEqual(entrypoint!.slice(-2), ["node", `${workdir}/dist/cli/llorch.js`], target);
    t.truthy(execForm(last(chain, "CMD")?.args ?? ""), `${target}: CMD in exec form, replaced by the role and its flags`);
    // The probes differ by role (the edge's HTTP paths, core's and sidecars' gRPC health), so the image says NONE.
    t.truthy(last(chain, "HEALTHCHECK"), `${target}: HEALTHCHECK`);
  }
});

test("nothing is fetched at build time but packages: no ADD, no curl or wget, install scripts off", (t) => {
  const instructions = stages.flatMap((s) => s.instructions);
  t.deepEqual(
    instructions.filter((i) => i.keyword === "ADD"),
    [],
  );
  t.deepEqual(
    instructions.filter((i) => i.keyword === "RUN" && /\b(curl|wget)\b/.test(i.args)),
    [],
  );
  for (const i of instructions.filter((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args))) t.regex(i.args, /--ignore-scripts/);
});

/** Runs a stage's RUN lines with sh in a folder holding every @node-llama-cpp build npm installs, and lists what is left. */
function prebuiltsKept(stage: string, env: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), "llorch-docker-"));
  try {
    for (const build of readdirSync(join(root, "node_modules", "@node-llama-cpp")))
      mkdirSync(join(dir, "node_modules", "@node-llama-cpp", build), { recursive: true });
    for (const i of stages.find((s) => s.name === stage)!.instructions.filter((i) => i.keyword === "RUN"))
      execFileSync("sh", ["-ec", i.args], { cwd: dir, env: { PATH: process.env.PATH, ...env } });
    return readdirSync(join(dir, "node_modules", "@node-llama-cpp")).sort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the default image keeps only the embedded engine's CPU build for its architecture, the CUDA image adds the CUDA builds", (t) => {
  t.true(readdirSync(join(root, "node_modules", "@node-llama-cpp")).length > 1, "npm installed several prebuilt builds here");
  const cpuDeps = all(stageChain(stages), "COPY").find((i) => /node_modules/.test(i.args))!.flags["from"]!;
  t.deepEqual(prebuiltsKept(cpuDeps, { TARGETARCH: "amd64" }), ["linux-x64"]);
  t.deepEqual(
    prebuiltsKept(cpuDeps, { TARGETARCH: "arm64" }),
    existsSync(join(root, "node_modules/@node-llama-cpp/linux-arm64")) ? ["linux-arm64"] : [],
  );
  const cudaDeps = all(stageChain(stages, "cuda"), "COPY").find((i) => /node_modules/.test(i.args))!.flags["from"]!;
  t.deepEqual(prebuiltsKept(cudaDeps, {}), ["linux-x64", "linux-x64-cuda", "linux-x64-cuda-ext"]);
  t.is(
    (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies[
      "node-llama-cpp"
    ],
    "3.21.1",
  );
});

test(".dockerignore keeps this machine's builds out, and every file the Dockerfile copies from the context is there", (t) => {
  const ignored = readFileSync(join(root, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  for (const p of ["node_modules", "dist", ".git"]) t.true(ignored.includes(p), p);
  for (const copy of stages.flatMap((s) => s.instructions).filter((i) => i.keyword === "COPY" && !i.flags["from"])) {
    const sources = (execForm(copy.args) ?? copy.args.split(/\s+/)).slice(0, -1);
    for (const source of sources) {
      t.true(existsSync(join(root, source)), `COPY ${source}: exists`);
      t.false(
        ignored.some((p) => source === p || source.startsWith(`${p}/`)),
        `COPY ${source}: not ignored`,
      );
    }
  }
});
