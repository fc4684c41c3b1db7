// Public (HTTP/JSON) names of the proto enums, by the rule in public-enum-names.ts
// (the same one the public JSON codec uses), for code that handles one enum
// value at a time: flags, log lines, metric labels, error envelopes, SSE frames.
// Whole messages go through public-json.ts instead.
import { StopReason, type Engine, type ErrorCode, type Priority, type Workload } from "./gen/llama_orch/v1/common.js";
import { publicEnumNames, type PublicEnumNames } from "./public-enum-names.js";

function publicEnum<E extends number>(typeName: string): { name: (v: E) => string; parse: (s: string) => E | undefined } {
  // Looked up on first use, so importing this module reads no file.
  let cached: PublicEnumNames | undefined;
  const names = () => (cached ??= publicEnumNames(typeName));
  return {
    name: (v) => names().name(v) ?? names().unrecognized,
    // Case-insensitive, and never the unspecified value: what a caller may name.
    parse: (s) => {
      const v = names().valueIgnoringCase(s);
      return v === undefined || v === 0 ? undefined : (v as E);
    },
  };
}

export const engines = publicEnum<Engine>("llama_orch.v1.Engine");
export const workloads = publicEnum<Workload>("llama_orch.v1.Workload");
export const priorities = publicEnum<Priority>("llama_orch.v1.Priority");
export const errorCodes = publicEnum<ErrorCode>("llama_orch.v1.ErrorCode");

const stopReasons = publicEnum<StopReason>("llama_orch.v1.StopReason");

export function stopReasonName(v: StopReason): string | undefined {
  return v === StopReason.STOP_REASON_UNSPECIFIED ? undefined : stopReasons.name(v);
}
