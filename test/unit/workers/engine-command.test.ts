import test from "ava";
import { placeholdersIn, substituteCommand } from "../../../workers/supervisor/engine-command.js";
import { splitCommand } from "../../../workers/supervisor/shell-words.js";

const LLAMA = "llama-server -m {model_path} --host {host} --port {port} -c {ctx_total} --parallel {slots}";

test("the placeholders a command uses are found inside its words", (t) => {
  t.deepEqual([...placeholdersIn(LLAMA)].sort(), ["ctx_total", "host", "model_path", "port", "slots"]);
  t.deepEqual([...placeholdersIn("vllm serve {model_path} --max-model-len={ctx}")].sort(), ["ctx", "model_path"]);
  t.deepEqual([...placeholdersIn("llama-server -m /models/a.gguf --port 8081")], []);
});

test("substitution fills every placeholder and keeps a path with spaces and quotes one word", (t) => {
  const command = substituteCommand(LLAMA, {
    model_path: "/cache/it's a model.gguf",
    host: "127.0.0.1",
    port: 43117,
    ctx_total: 8192,
    slots: 2,
  });
  t.deepEqual(splitCommand(command), [
    "llama-server",
    "-m",
    "/cache/it's a model.gguf",
    "--host",
    "127.0.0.1",
    "--port",
    "43117",
    "-c",
    "8192",
    "--parallel",
    "2",
  ]);
  t.deepEqual(splitCommand(substituteCommand("engine --url=http://{host}:{port}/v1", { host: "h", port: 1 })), [
    "engine",
    "--url=http://h:1/v1",
  ]);
});

test("a value is inserted as is, never read as a placeholder or as shell syntax", (t) => {
  const command = substituteCommand("engine -m {model_path} --port {port}", { model_path: "/m/{port} $HOME; rm -rf /", port: 9 });
  t.deepEqual(splitCommand(command), ["engine", "-m", "/m/{port} $HOME; rm -rf /", "--port", "9"]);
});

test("an unknown placeholder is refused with the known ones; one without a value is refused by name", (t) => {
  t.throws(() => placeholdersIn("llama-server -m {model} --port {port}"), {
    message: "unknown placeholder {model} in --engine-cmd (known: {model_path}, {port}, {host}, {ctx}, {ctx_total}, {slots})",
  });
  t.throws(() => substituteCommand("engine -m {model_path}", {}), { message: "--engine-cmd uses {model_path}, which has no value here" });
  // Braces that are not a placeholder's (JSON, say) pass through.
  t.deepEqual(splitCommand(substituteCommand(`engine --kwargs '{"think": false}'`, {})), ["engine", "--kwargs", '{"think": false}']);
});
