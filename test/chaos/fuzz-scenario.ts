import fc from "fast-check";
import { sendAndJudge } from "../support/fuzz-judge.js";
import { anyContractRequest } from "../support/request-fuzz.js";

export interface FuzzFigures {
  sent: number;
  /** 5xx answers other than the typed 503. */
  by5xx: number;
  /** Distinct problems (ids and numbers folded), with how often each was seen. */
  problems: Map<string, number>;
  byStatus: Map<number, number>;
}

const fold = (p: string) => p.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<uuid>").slice(0, 240);

/** Sends `count` fuzzed requests over every operation, `concurrency` at a time, and tallies what broke. */
export async function fuzzRequests(
  edgeUrl: string,
  apiKey: string | undefined,
  count: number,
  concurrency = 8,
  seed = 42,
): Promise<FuzzFigures> {
  const requests = fc.sample(anyContractRequest(apiKey), { numRuns: count, seed });
  const figures: FuzzFigures = { sent: 0, by5xx: 0, problems: new Map(), byStatus: new Map() };
  let next = 0;
  const lane = async () => {
    while (next < requests.length) {
      const req = requests[next++]!;
      const verdict = await sendAndJudge(edgeUrl, req);
      figures.sent++;
      figures.byStatus.set(verdict.status, (figures.byStatus.get(verdict.status) ?? 0) + 1);
      // 503 is the contract's typed refusal; any other 5xx is a bug.
      if (verdict.status >= 500 && verdict.status !== 503) figures.by5xx++;
      for (const p of verdict.problems) figures.problems.set(fold(p), (figures.problems.get(fold(p)) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return figures;
}
