// Runs provisionModel in a process of its own, as a second sidecar on the
// same host would: argv[2] is the ref, argv[3] the options as JSON. Prints
// "started" once it is running, then the result (or the error) as JSON.
import { provisionModel } from "../../../../workers/provision/provision-model.js";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";

const [ref, options] = process.argv.slice(2);
process.stdout.write("started\n");
try {
  const result = await provisionModel(ref!, JSON.parse(options ?? "{}"));
  process.stdout.write(`${JSON.stringify({ result })}\n`);
} catch (err) {
  process.stdout.write(
    `${JSON.stringify({ error: err instanceof ProvisionError ? { kind: err.kind, message: err.message } : String(err) })}\n`,
  );
  process.exitCode = 1;
}
