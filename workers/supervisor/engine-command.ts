// The placeholders of --engine-cmd: what the sidecar fills in before it starts
// an engine process, so one command line serves every model it switches to
// and every port it picks ("llama-server -m {model_path} --port {port}").
// Substitution happens inside the command's words, after they are split, so a
// model path with spaces or quotes stays one argument.
import { joinCommand, splitCommand } from "./shell-words.js";

export const PLACEHOLDERS = ["model_path", "port", "host", "ctx", "ctx_total", "slots"] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/** What each placeholder stands for, for --help and error messages. */
export const PLACEHOLDER_MEANINGS: Record<Placeholder, string> = {
  model_path: "the model's local file (or directory), downloaded into the model cache first for hf: and https: refs",
  port: "a free port the sidecar picked; the engine URL is derived from it",
  host: "the host the engine serves on (--engine-url's, else 127.0.0.1)",
  ctx: "context tokens per slot (--ctx-max)",
  ctx_total: "context tokens of all slots together (--ctx-max × --slots), what llama-server's -c takes",
  slots: "parallel generations (--slots)",
};

export type PlaceholderValues = Partial<Record<Placeholder, string | number>>;

/** `{name}` where name looks like a placeholder: letters, digits, underscores. */
const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

function isPlaceholder(name: string): name is Placeholder {
  return (PLACEHOLDERS as readonly string[]).includes(name);
}

/**
 * The placeholders `command` uses. Throws for a `{name}` that is none of
 * them (a typo such as `{model}` would otherwise reach the engine as is) and
 * for a command that does not split (see splitCommand).
 */
export function placeholdersIn(command: string): Set<Placeholder> {
  const used = new Set<Placeholder>();
  for (const word of splitCommand(command)) {
    for (const [, name] of word.matchAll(PLACEHOLDER)) {
      if (!isPlaceholder(name!))
        throw new SyntaxError(`unknown placeholder {${name}} in --engine-cmd (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")})`);
      used.add(name);
    }
  }
  return used;
}

/**
 * `command` with its placeholders replaced, as a command line that splits
 * into the same words with the values in them. Throws when a placeholder it
 * uses has no value.
 */
export function substituteCommand(command: string, values: PlaceholderValues): string {
  placeholdersIn(command);
  const words = splitCommand(command).map((word) =>
    word.replace(PLACEHOLDER, (_, name: Placeholder) => {
      const value = values[name];
      if (value === undefined) throw new Error(`--engine-cmd uses {${name}}, which has no value here`);
      return String(value);
    }),
  );
  return joinCommand(words);
}
