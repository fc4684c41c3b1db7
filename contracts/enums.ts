// Public (HTTP/JSON) names of the proto enums. The proto enum is the single
// definition; the public name is its value name without the enum prefix.
import {
  Determinism, determinismFromJSON, determinismToJSON,
  Engine, engineFromJSON, engineToJSON,
  ErrorCode, errorCodeFromJSON, errorCodeToJSON,
  KvHint, kvHintFromJSON, kvHintToJSON,
  Priority, priorityFromJSON, priorityToJSON,
  StopReason, stopReasonToJSON,
  Workload, workloadFromJSON, workloadToJSON,
} from "./gen/llama_orch/v1/common.js";
import { PlacementMode, placementModeFromJSON, placementModeToJSON } from "./gen/llama_orch/v1/task.js";

function tail(prefix: string, json: string): string {
  return json.startsWith(prefix) ? json.slice(prefix.length) : json;
}

/** Builds the name<->value pair for one enum from ts-proto's JSON helpers. */
function publicEnum<E extends number>(
  prefix: string,
  toJSON: (v: E) => string,
  fromJSON: (v: unknown) => E,
  lower: boolean,
): { name: (v: E) => string; parse: (s: string) => E | undefined } {
  return {
    name: (v) => {
      const t = tail(prefix, toJSON(v));
      return lower ? t.toLowerCase() : t;
    },
    parse: (s) => {
      const v = fromJSON(prefix + s.toUpperCase());
      return v === -1 || v === 0 ? undefined : v;
    },
  };
}

export const engines = publicEnum<Engine>("ENGINE_", engineToJSON, engineFromJSON, true);
export const workloads = publicEnum<Workload>("WORKLOAD_", workloadToJSON, workloadFromJSON, true);
export const priorities = publicEnum<Priority>("PRIORITY_", priorityToJSON, priorityFromJSON, true);
export const determinisms = publicEnum<Determinism>("DETERMINISM_", determinismToJSON, determinismFromJSON, true);
export const kvHints = publicEnum<KvHint>("KV_HINT_", kvHintToJSON, kvHintFromJSON, true);
export const placementModes = publicEnum<PlacementMode>("PLACEMENT_MODE_", placementModeToJSON, placementModeFromJSON, true);
export const errorCodes = publicEnum<ErrorCode>("ERROR_CODE_", errorCodeToJSON, errorCodeFromJSON, false);

export function stopReasonName(v: StopReason): string | undefined {
  return v === StopReason.STOP_REASON_UNSPECIFIED ? undefined : tail("STOP_REASON_", stopReasonToJSON(v)).toLowerCase();
}
