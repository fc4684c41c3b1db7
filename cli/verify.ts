// `llorch verify MODEL_ID`: starts the catalog's verification of a model and
// follows it to the end through the public API, drawing the hashing's
// progress on a terminal.
import { progressBar, redrawLine, type ProgressJson } from "./progress-bar.js";
import { askEdge, str, type Json } from "./edge-api.js";
import type { StatusOptions } from "./status.js";

/** How often the entry is read while the verification runs: a bar needs no more. */
const POLL_MS = 250;

/** Resolves when the verification passed or could not check (pending); throws when it failed. */
export async function runVerify(o: StatusOptions, args: string[], terminal = process.stderr, out = process.stdout): Promise<void> {
  const id = args[0];
  if (!id || args.length > 1) throw new Error("which model: llorch verify MODEL_ID");
  const path = `/v1/catalog/models/${encodeURIComponent(id)}`;
  await askEdge(o, `${path}/verify`, { method: "POST" });
  const draw = redrawLine(terminal);
  let verification: Json;
  for (;;) {
    const entry = await askEdge(o, path);
    verification = (entry["verification"] as Json | undefined) ?? {};
    const progress = verification["progress"] as ProgressJson | undefined;
    // A pending verification without progress has finished too: nothing local could be checked.
    if (verification["status"] !== "pending" || progress === undefined) break;
    draw(`${id}: ${progressBar(progress, 30)}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  draw(undefined);
  const status = str(verification["status"]);
  const reason = str(verification["reason"]);
  const warnings = (verification["warnings"] as string[] | undefined) ?? [];
  if (o.json) out.write(`${JSON.stringify({ id, verification })}\n`);
  else {
    const digest = verification["computed_digest"] ? `, ${str(verification["computed_digest"])}` : "";
    out.write(`${id}: ${status}${reason ? ` (${reason})` : ""}${digest}\n`);
    for (const w of warnings) out.write(`  warning: ${w}\n`);
  }
  if (status === "failed") throw new Error(`${id} failed verification: ${str(verification["error"]) || reason}`);
}
