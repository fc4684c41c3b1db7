import test from "ava";
import { Engine, ErrorCode, StopReason } from "../../contracts/gen/llama_orch/v1/common.js";
import { engines, errorCodes, stopReasonName } from "../../contracts/enums.js";
import { protoRegistry } from "../../contracts/proto-registry.js";
import { publicEnumNames } from "../../contracts/public-enum-names.js";

test("a value's public name is its name without the enum's prefix, lower case", (t) => {
  const names = publicEnumNames("llama_orch.v1.Engine");
  t.is(names.name(Engine.ENGINE_LLAMACPP), "llamacpp");
  t.is(names.name(Engine.ENGINE_UNSPECIFIED), "unspecified");
  t.deepEqual(names.names, ["llamacpp", "vllm", "tgi", "triton", "openai"]);
  t.is(publicEnumNames("llama_orch.v1.Determinism").name(2), "best_effort");
  t.is(publicEnumNames("llama_orch.v1.KvHint").value("reuse"), 1);
});

test("(public_upper_case) spells every value of ErrorCode in upper case", (t) => {
  t.is(errorCodes.name(ErrorCode.ERROR_CODE_INVALID_PARAMS), "INVALID_PARAMS");
  t.is(errorCodes.name(ErrorCode.ERROR_CODE_QUEUE_FULL_DROP_LRU), "QUEUE_FULL_DROP_LRU");
  t.is(errorCodes.parse("INVALID_PARAMS"), ErrorCode.ERROR_CODE_INVALID_PARAMS);
  t.is(publicEnumNames("llama_orch.v1.ErrorCode").value("invalid_params"), undefined, "exact lookups are case-sensitive");
});

test("value() is exact; parse() ignores case and never yields the unspecified value", (t) => {
  const names = publicEnumNames("llama_orch.v1.Engine");
  t.is(names.value("llamacpp"), Engine.ENGINE_LLAMACPP);
  t.is(names.value("LLAMACPP"), undefined);
  t.is(names.valueIgnoringCase("LlamaCpp"), Engine.ENGINE_LLAMACPP);
  t.is(names.value("unspecified"), Engine.ENGINE_UNSPECIFIED);
  t.is(engines.parse("LLAMACPP"), Engine.ENGINE_LLAMACPP);
  t.is(engines.parse("unspecified"), undefined);
  t.is(engines.parse("ENGINE_LLAMACPP"), undefined);
  t.is(engines.parse("nope"), undefined);
});

test("a number the enum does not define has no public name; enums.ts says unrecognized in the enum's case", (t) => {
  t.is(publicEnumNames("llama_orch.v1.Engine").name(99), undefined);
  t.is(engines.name(99 as Engine), "unrecognized");
  t.is(engines.name(Engine.UNRECOGNIZED), "unrecognized");
  t.is(errorCodes.name(99 as ErrorCode), "UNRECOGNIZED");
  t.is(stopReasonName(StopReason.STOP_REASON_UNSPECIFIED), undefined);
  t.is(stopReasonName(StopReason.STOP_REASON_MAX_TOKENS), "max_tokens");
});

test("every enum of proto/llama_orch has distinct public names that map back to their values", (t) => {
  let enums = 0;
  for (const file of protoRegistry().files) {
    if (!file.name.startsWith("llama_orch/")) continue;
    const all = [...file.enums, ...file.messages.flatMap((m) => m.nestedEnums)];
    for (const desc of all) {
      enums++;
      const names = publicEnumNames(desc.typeName);
      const spelled = desc.values.map((v) => names.name(v.number)!);
      t.is(new Set(spelled).size, spelled.length, desc.typeName);
      for (const v of desc.values) t.is(names.value(names.name(v.number)!), v.number, `${desc.typeName}.${v.name}`);
    }
  }
  t.true(enums >= 8);
});

test("an enum that proto/ does not declare is an error naming it", (t) => {
  t.throws(() => publicEnumNames("llama_orch.v1.NoSuchEnum"), { message: /llama_orch\.v1\.NoSuchEnum/ });
});
