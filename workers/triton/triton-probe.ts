// One health probe of a Triton server for one model. KServe v2 health
// endpoints answer 200 for true and 4xx (Triton: 400) for false.
import type { ProbeResult } from "../engine/health-poller.js";
import type { EngineHttp } from "../http/engine-http.js";
import { engineErrorMessage } from "../http/engine-errors.js";

/** `/v2/models/{model}` plus `suffix`, the model name escaped for a path segment. */
export function modelPath(model: string, suffix = ""): string {
  return `/v2/models/${encodeURIComponent(model)}${suffix}`;
}

/**
 * Asks whether the model is ready rather than the server (`/v2/health/ready`):
 * the server is ready only when every model of its repository is, and a
 * broken neighbour must not take this replica out of placement. When the
 * model is not ready, `/v2/health/live` tells a server that is up but still
 * loading (or was pointed at a model it does not have) from one that is not.
 * Transport failures reject; the poller reports them as down.
 */
export async function probeTriton(http: EngineHttp, model: string, signal: AbortSignal): Promise<ProbeResult> {
  const ready = await http.get(modelPath(model, "/ready"), { signal });
  if (ready.status === 200) return { outcome: "ready" };
  if (ready.status === 429 || ready.status === 408) return { outcome: "busy" };
  const live = await http.get("/v2/health/live", { signal });
  if (live.status === 200) {
    const why = ready.text.trim() === "" ? `HTTP ${ready.status}` : engineErrorMessage(http.redact(ready.text));
    return { outcome: "loading", detail: `model ${model} is not ready: ${why}` };
  }
  return { outcome: "down", detail: `GET /v2/health/live: HTTP ${live.status}` };
}
