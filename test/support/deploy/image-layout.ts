import { cpSync, mkdirSync, mkdtempSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, posix } from "node:path";
import { projectRoot } from "../../../contracts/runtime/project-root.js";
import { execForm, stageChain, type Stage } from "./dockerfile.js";

/**
 * What a `COPY --from=<stage> <path>` brings, made on this machine instead: the build stage's
 * compiler output is our dist/ (npm test built it), a dependency stage's node_modules ours
 * (linked, not copied: 1 GB). A COPY from a stage not listed here fails the layout, so a new
 * one is added here knowingly.
 */
const FROM_STAGES: Record<string, { source: string; link: boolean }> = {
  "build:/src/dist": { source: "dist", link: false },
  "deps-cpu:/opt/llorch/node_modules": { source: "node_modules", link: true },
};

export interface ImageLayout {
  /** A temporary folder standing for the image's /. */
  root: string;
  /** The image's WORKDIR, inside root. */
  workdir: string;
  /** The ENTRYPOINT's words, its paths inside root. */
  entrypoint: string[];
  /** What its ENV lines set. */
  env: Record<string, string>;
}

/**
 * The files a target of the Dockerfile holds, laid out under a temporary root by following its
 * WORKDIR and COPY instructions: what the image would run, without Docker.
 */
export function imageLayout(stages: Stage[], target?: string): ImageLayout {
  const root = mkdtempSync(join(tmpdir(), "llorch-image-"));
  const repo = projectRoot();
  let workdir = "/";
  let entrypoint: string[] = [];
  const env: Record<string, string> = {};
  for (const i of stageChain(stages, target).flatMap((s) => s.instructions)) {
    if (i.keyword === "WORKDIR") workdir = posix.resolve(workdir, i.args);
    if (i.keyword === "ENTRYPOINT") entrypoint = execForm(i.args) ?? [];
    if (i.keyword === "ENV") for (const [, k, v] of i.args.matchAll(/(\w+)=(\S*)/g)) env[k!] = v!;
    if (i.keyword !== "COPY") continue;
    const words = execForm(i.args) ?? i.args.split(/\s+/);
    const dest = posix.resolve(workdir, words.at(-1)!);
    const intoDir = words.length > 2 || words.at(-1)!.endsWith("/");
    for (const source of words.slice(0, -1)) {
      const from = i.flags["from"] ? FROM_STAGES[`${i.flags["from"]}:${source}`] : { source, link: false };
      if (!from) throw new Error(`COPY --from=${i.flags["from"]} ${source}: not in FROM_STAGES`);
      const src = join(repo, from.source);
      const to = join(root, intoDir && !statSync(src).isDirectory() ? posix.join(dest, basename(source)) : dest);
      mkdirSync(dirname(to), { recursive: true });
      if (from.link) symlinkSync(src, to);
      else cpSync(src, to, { recursive: true });
    }
  }
  return { root, workdir: join(root, workdir), entrypoint: entrypoint.map((w) => (w.startsWith("/") ? join(root, w) : w)), env };
}
