// The GET of a health probe, turned into what HealthPoller understands.
import { failureOf } from "../http/engine-errors.js";
import type { EngineHttp } from "../http/engine-http.js";
import type { ProbeResult } from "./health-poller.js";

/** A probe's own bound; below HealthPoller's 5 s probe timeout, so a slow engine reads as a timeout, not an abort. */
export const PROBE_TIMEOUT_MS = 3_000;

/**
 * GET for a probe: the body of a 2xx answer, or the ProbeResult that ends
 * the probe (429/408 busy; any other status or a transport failure down,
 * with the HTTP layer's redacted message).
 */
export async function probeGet(http: EngineHttp, path: string, signal: AbortSignal): Promise<{ text: string } | ProbeResult> {
  let status: number;
  let text: string;
  try {
    ({ status, text } = await http.get(path, { signal, timeoutMs: PROBE_TIMEOUT_MS }));
  } catch (err) {
    return { outcome: "down", detail: http.redact(err instanceof Error ? err.message : String(err)) };
  }
  if (status === 429 || status === 408) return { outcome: "busy" };
  // Engines echo keys back in their errors (a rejected one, above all): redact before the text becomes lastError.
  if (status < 200 || status > 299) return { outcome: "down", detail: http.redact(failureOf({ path, status, body: text }).message) };
  return { text };
}
