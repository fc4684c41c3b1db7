import test from "ava";
import fc from "fast-check";
import { quietLogger } from "../../support/log-capture.js";
import { backoffDelayMs } from "../../../workers/supervisor/backoff.js";
import { EngineSupervisor } from "../../../workers/supervisor/engine-supervisor.js";
import { RestartPolicy } from "../../../workers/supervisor/restart-policy.js";
import { joinCommand, splitCommand } from "../../../workers/supervisor/shell-words.js";

test("splitCommand splits like a shell, with quotes and escapes, but without a shell", (t) => {
  t.deepEqual(splitCommand("llama-server -m model.gguf --port 8081"), ["llama-server", "-m", "model.gguf", "--port", "8081"]);
  t.deepEqual(splitCommand(`  engine  -m '/models/my model.gguf'\t--alias "a \\"b\\" \\\\c" x\\ y ''`), [
    "engine",
    "-m",
    "/models/my model.gguf",
    "--alias",
    'a "b" \\c',
    "x y",
    "",
  ]);
  t.deepEqual(splitCommand(`a 'b'"c"d "it's" '$HOME' "\\n"`), ["a", "bcd", "it's", "$HOME", "\\n"]);
  t.deepEqual(splitCommand("engine \\\n  --flag"), ["engine", "--flag"]);
  t.throws(() => splitCommand("engine 'unterminated"), { message: /unterminated ' quote/ });
  t.throws(() => splitCommand('engine "unterminated'), { message: /unterminated " quote/ });
  t.throws(() => splitCommand("engine \\"), { message: /trailing backslash/ });
  t.throws(() => splitCommand("   "), { message: /empty engine command/ });
  t.throws(() => splitCommand("engine > log.txt"), { message: /unquoted > .*without a shell/ });
  t.throws(() => splitCommand("engine -m $MODEL"), { message: /unquoted \$/ });
  t.throws(() => splitCommand("a | b"), { message: /unquoted \|/ });
});

test("joinCommand quotes words so that splitCommand gives them back", (t) => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: "binary" }), { minLength: 1, maxLength: 6 }), (words) => {
      t.deepEqual(splitCommand(joinCommand(words)), words);
    }),
    { numRuns: 300 },
  );
});

test("backoff grows by its factor up to the cap, with ±jitter", (t) => {
  const exact = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0 };
  t.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 50].map((a) => backoffDelayMs(exact, a)),
    [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000],
  );
  const jittered = { initialMs: 500, maxMs: 30_000, factor: 2 }; // default jitter ±20 %
  t.is(
    backoffDelayMs(jittered, 0, () => 0),
    400,
  );
  t.is(
    backoffDelayMs(jittered, 0, () => 0.5),
    500,
  );
  t.is(
    backoffDelayMs(jittered, 10, () => 0.999_999),
    36_000,
  );
  for (let i = 0; i < 200; i++) {
    const d = backoffDelayMs(jittered, 3);
    t.true(d >= 3_200 && d <= 4_800, `delay ${d}`);
  }
});

test("the constructor refuses a command it cannot run without a shell and nonsense settings", (t) => {
  const base = { probe: () => Promise.resolve({ outcome: "ready" } as const), logger: quietLogger };
  t.throws(() => new EngineSupervisor({ ...base, command: "llama-server -m model.gguf 2>&1 | tee log" }), { message: /without a shell/ });
  t.throws(() => new EngineSupervisor({ ...base, command: "engine", backoff: { initialMs: 1_000, maxMs: 10, factor: 2 } }), {
    message: /maxMs/,
  });
  t.throws(() => new EngineSupervisor({ ...base, command: "engine", readyTimeoutMs: 0 }), { message: /readyTimeoutMs/ });
  t.throws(() => new EngineSupervisor({ ...base, command: "engine", breaker: { maxCrashes: 0, windowMs: 1_000 } }), {
    message: /maxCrashes/,
  });
});

test("the restart policy: backoff grows per crash up to its cap, the circuit opens at maxCrashes within the window, old crashes and a long Ready start over", (t) => {
  const policy = new RestartPolicy({ initialMs: 100, maxMs: 300, factor: 2, jitter: 0 }, { maxCrashes: 4, windowMs: 10_000 }, 5_000);
  t.deepEqual(policy.crashed(0, undefined), { action: "restart", delayMs: 100, crashesInWindow: 1 });
  t.deepEqual(policy.crashed(1_000, 900), { action: "restart", delayMs: 200, crashesInWindow: 2 }, "Ready for 100 ms resets nothing");
  t.deepEqual(policy.crashed(1_500, undefined), { action: "restart", delayMs: 300, crashesInWindow: 3 }, "capped at maxMs");
  t.deepEqual(policy.crashed(2_000, undefined), { action: "circuit-open", crashesInWindow: 4 });
  t.deepEqual(policy.crashed(20_000, 14_000), { action: "restart", delayMs: 100, crashesInWindow: 1 }, "outside the window; Ready for 6 s");
  t.deepEqual(policy.crashed(20_500, undefined), { action: "restart", delayMs: 200, crashesInWindow: 2 });
  policy.reset();
  t.deepEqual(policy.crashed(21_000, undefined), { action: "restart", delayMs: 100, crashesInWindow: 1 }, "a fresh start() forgets");
});
