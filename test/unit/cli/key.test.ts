import test from "ava";
import { runKeyCommand } from "../../../cli/key.js";
import { parseKeysFile, sha256Hex } from "../../../contracts/runtime/auth/keys-file.js";

test("llorch key prints a new key once and the keys-file line that holds only its hash", (t) => {
  let out = "";
  runKeyCommand(["gpu-1"], { role: "worker", fromStdin: false }, (s) => (out += s));
  const lines = out.split("\n");
  const key = lines.find((l) => l.startsWith("llorch_"))!;
  const line = lines.find((l) => l.trim().startsWith("gpu-1:"))!;
  t.false(line.includes(key), "the line holds no key");
  t.deepEqual(parseKeysFile(`keys:\n${line}\n`), [{ name: "gpu-1", role: "worker", sha256: sha256Hex(key) }]);
  t.throws(() => runKeyCommand([], { role: "client", fromStdin: false }, () => {}), { message: /one NAME/ });
  t.throws(() => runKeyCommand(["a b"], { role: "client", fromStdin: false }, () => {}), { message: /NAME must be/ });
});
