import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../../contracts/runtime/project-root.js";

/** One instruction: its keyword in capitals, its --flags, and the rest as written. */
export interface Instruction {
  keyword: string;
  flags: Record<string, string>;
  args: string;
}

export interface Stage {
  /** The image or stage it starts from. */
  from: string;
  name?: string;
  instructions: Instruction[];
}

export const DOCKERFILE = join(projectRoot(), "Dockerfile");

/**
 * The Dockerfile's stages as Docker reads them: comments and blank lines dropped, a trailing
 * backslash continuing an instruction, `--name=value` flags before the arguments.
 */
export function dockerfileStages(text = readFileSync(DOCKERFILE, "utf8")): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n(\s*#.*\n)*/g, " ").split("\n");
  for (const line of lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))) {
    const [, keyword, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
    const flags: Record<string, string> = {};
    let args = rest!;
    for (let flag = /^--([a-z-]+)=(\S+)\s*/.exec(args); flag; flag = /^--([a-z-]+)=(\S+)\s*/.exec(args)) {
      flags[flag[1]!] = flag[2]!;
      args = args.slice(flag[0].length);
    }
    const instruction = { keyword: keyword!.toUpperCase(), flags, args };
    if (instruction.keyword === "FROM") {
      const [from, as, name] = args.split(/\s+/);
      stages.push({ from: from!, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== "ARG") throw new Error(`${instruction.keyword} before the first FROM`);
    } else stages.at(-1)!.instructions.push(instruction);
  }
  return stages;
}

/** The stages an image is built through, from its first base to `target` (the last stage by default). */
export function stageChain(stages: Stage[], target = stages.at(-1)?.name): Stage[] {
  const stage = stages.find((s) => s.name === target);
  if (!stage) throw new Error(`no stage ${target}`);
  return stages.some((s) => s.name === stage.from) ? [...stageChain(stages, stage.from), stage] : [stage];
}

/** An exec-form (JSON array) instruction's words, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  try {
    const words: unknown = JSON.parse(args);
    return Array.isArray(words) && words.every((w) => typeof w === "string") ? words : undefined;
  } catch {
    return undefined;
  }
}
