// `llorch demo-model PATH`: writes a small random-weight GGUF model that the
// embedded engine runs, so anyone can try real llama.cpp inference without
// downloading a model.
import { resolve } from "node:path";
import { flagHelp, type FlagTable } from "../contracts/runtime/flag-table.js";
import { flagBoolean, flagChoice, flagInteger } from "../contracts/runtime/flag-values.js";
import { writeFileAtomic } from "../contracts/runtime/atomic-file.js";
import { demoModelGguf, type DemoModelKind, type DemoModelOptions } from "../workers/gguf/demo-model.js";

const KINDS: readonly DemoModelKind[] = ["generation", "embedding", "ranking"];

export const DEMO_MODEL_FLAGS: FlagTable<DemoModelOptions> = [
  {
    name: "kind",
    arg: "<kind>",
    help: `${KINDS.join(", ")}: what the model serves (completion, embedding or rerank tasks; default generation)`,
    apply: (o, v, f) => (o.kind = flagChoice(f, v, KINDS)),
  },
  {
    name: "seed",
    arg: "<n>",
    help: "weights seed: the same seed writes the same file (default 1)",
    apply: (o, v, f) => (o.seed = flagInteger(f, v, 0, 0xffffffff)),
  },
  {
    name: "endless",
    arg: "",
    help: "a generation model that never ends a generation by itself: streams run to max_tokens (for benchmarks)",
    apply: (o, v, f) => (o.endsGenerations = !flagBoolean(f, v)),
  },
  {
    name: "ctx",
    arg: "<n>",
    help: "context length the model declares (default 4096)",
    apply: (o, v, f) => (o.contextLength = flagInteger(f, v, 16, 1 << 20)),
  },
];

export const demoModelHelp = `llorch demo-model PATH — write a random-weight GGUF model (a few hundred KB) for the embedded engine

It speaks nonsense, but it is real llama.cpp inference: try it with
  llorch demo-model /tmp/demo.gguf && npm start -- --model file:/tmp/demo.gguf

${flagHelp(DEMO_MODEL_FLAGS, 22)}
`;

export async function writeDemoModel(path: string | undefined, options: DemoModelOptions): Promise<void> {
  if (!path) throw new Error("where to write the model: llorch demo-model PATH");
  const target = resolve(path);
  const bytes = Buffer.concat(demoModelGguf(options));
  await writeFileAtomic(target, bytes);
  process.stdout.write(
    `wrote ${target} (${options.kind ?? "generation"} model, ${bytes.length} bytes); serve it with --model file:${target}\n`,
  );
}
