import test from "ava";
import { UP_DEFAULTS, UP_FLAGS, upConfigFromFlags, upHelp } from "../../../cli/up-config.js";
import { flagNames } from "../../../contracts/runtime/flag-table.js";

test("llorch up's flags map onto its config; none give the defaults", (t) => {
  t.deepEqual(upConfigFromFlags({}), UP_DEFAULTS);
  t.deepEqual(
    upConfigFromFlags({
      host: "::1",
      "edge-port": "0",
      "core-port": "0",
      "metrics-port": "0",
      workers: "3",
      slots: "8",
      "tokens-per-second": "0",
      engine: "vllm",
      model: "m",
      quiet: true,
    }),
    {
      host: "::1",
      edgePort: 0,
      corePort: 0,
      metricsPort: 0,
      workers: 3,
      slots: 8,
      tokensPerSecond: 0,
      engine: "vllm",
      model: "m",
      quiet: true,
    },
  );
});

test("llorch up refuses bad values naming the flag", (t) => {
  t.throws(() => upConfigFromFlags({ workers: "0" }), { message: /--workers must be an integer from 1 to 64/ });
  t.throws(() => upConfigFromFlags({ "tokens-per-second": "2.5" }), { message: /--tokens-per-second/ });
});

test("llorch up's help lists every flag and --config", (t) => {
  for (const name of flagNames(UP_FLAGS)) t.true(upHelp.includes(`--${name} `), name);
  t.regex(upHelp, /^ {2}--config FILE {12}YAML config file$/m);
});
