import { readlink, realpath } from "node:fs/promises";
import path from "node:path";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { OrchError } from "../../contracts/runtime/metadata.js";

/**
 * What a client hears for a file core will not read: the same words for every
 * such path, whether it exists or not, so the answer is no oracle for the
 * machine's files.
 */
export const OUTSIDE_ROOTS_MESSAGE =
  "source_url names a file outside the directories core may read (--model-roots and the model cache); it was not read";

export function outsideRoots(): OrchError {
  return OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, OUTSIDE_ROOTS_MESSAGE, { field: "/source_url" });
}

interface Root {
  /** As configured, resolved to an absolute path. */
  lexical: string;
  /** Followed through symlinks (the lexical path while it does not exist). */
  real: string;
}

/**
 * The directories catalog verify may read (core's --model-roots and the
 * model cache). A file is admitted only when it lies under one of them both
 * as written and once every symlink on its way is followed, so neither `..`
 * nor a link inside a root reaches anything else.
 */
export class ModelRoots {
  private constructor(private readonly roots: readonly Root[]) {}

  static async of(dirs: readonly string[]): Promise<ModelRoots> {
    const roots = await Promise.all(
      dirs.map(async (dir) => {
        const lexical = path.resolve(dir);
        return { lexical, real: await realpath(lexical).catch(() => lexical) };
      }),
    );
    return new ModelRoots(roots);
  }

  /**
   * The path to read for `file` (absolute), or undefined when it lies outside
   * every root. A file that does not exist is admitted as written only when
   * its nearest existing directory is itself inside a root, so what the
   * verification then says about it (missing) is about a root's contents.
   */
  async admit(file: string): Promise<string | undefined> {
    const resolved = path.resolve(file);
    if (!this.roots.some((r) => isWithin(resolved, r.lexical) || isWithin(resolved, r.real))) return undefined;
    const real = await realpathOfExisting(resolved);
    return this.roots.some((r) => isWithin(real, r.real)) ? (real.endsWith(MISSING) ? resolved : real) : undefined;
  }
}

/** Marks a path whose tail does not exist (see realpathOfExisting). */
const MISSING = "\0missing";

/**
 * `file` followed through symlinks; for one that does not exist, its nearest
 * existing ancestor followed through symlinks (a dangling link through its
 * target), joined with the rest and marked MISSING (never a path on disk: it
 * ends with a NUL).
 */
async function realpathOfExisting(file: string, hops = 0): Promise<string> {
  let head = file;
  const tail: string[] = [];
  for (;;) {
    try {
      const real = await realpath(head);
      return tail.length === 0 ? real : path.join(real, ...tail.reverse()) + MISSING;
    } catch {
      const target = await readlink(head).catch(() => undefined);
      // A link to nothing leads where its target would be; too many hops are a loop, and lead nowhere.
      if (target !== undefined) {
        if (hops >= MAX_LINK_HOPS) return file + MISSING;
        return realpathOfExisting(path.join(path.resolve(path.dirname(head), target), ...tail.reverse()), hops + 1);
      }
      const parent = path.dirname(head);
      if (parent === head) return file + MISSING;
      tail.push(path.basename(head));
      head = parent;
    }
  }
}

/** As many symlinks as Linux follows on one path. */
const MAX_LINK_HOPS = 40;

/** `file` is `dir` or lies below it. */
function isWithin(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}
