import test from "ava";
import fc from "fast-check";
import { StopMatcher } from "../../../../workers/engine/stop-matcher.js";

function run(tokens: string[], stops: string[]): { texts: string[]; stopped: boolean } {
  const m = new StopMatcher(stops);
  const texts: string[] = [];
  for (const t of tokens) {
    const step = m.push(t);
    texts.push(...step.texts);
    if (step.stopped) return { texts, stopped: true };
  }
  return { texts: [...texts, ...m.flush()], stopped: false };
}

test("generation ends before the stop string, which is not part of the output", (t) => {
  t.deepEqual(run(["Hello", " world", "\n\n", "more"], ["\n\n"]), { texts: ["Hello", " world"], stopped: true });
});

test("a stop string split over tokens is held back, then cut: none of it reaches the client", (t) => {
  t.deepEqual(run(["one", " tw", "o END", " x"], [" two"]), { texts: ["one"], stopped: true });
  t.deepEqual(
    run(["a", "b", "c"], ["bcd"]),
    { texts: ["a", "", "bc"], stopped: false },
    "held text that was no stop after all comes out at the end",
  );
});

test("text before the stop inside the same token is kept", (t) => {
  t.deepEqual(run(["It is done.STOP here"], ["STOP"]), { texts: ["It is done."], stopped: true });
});

test("without stop strings every token passes straight through", (t) => {
  t.deepEqual(run(["a", "b"], []), { texts: ["a", "b"], stopped: false });
});

test("property: the output is exactly the text before the first stop, and never contains a stop string", (t) => {
  const piece = fc.string({ unit: fc.constantFrom("a", "b", "c", " ", "\n"), maxLength: 4 });
  fc.assert(
    fc.property(
      fc.array(piece, { maxLength: 30 }),
      fc.array(fc.string({ unit: fc.constantFrom("a", "b", "\n"), minLength: 1, maxLength: 3 }), { maxLength: 3 }),
      (tokens, stops) => {
        const { texts, stopped } = run(tokens, stops);
        const full = tokens.join("");
        const cut = Math.min(...stops.map((s) => full.indexOf(s)).filter((i) => i >= 0), full.length);
        const out = texts.join("");
        return (
          out === full.slice(0, cut) &&
          stopped === cut < full.length &&
          texts.length <= tokens.length &&
          stops.every((s) => !out.includes(s))
        );
      },
    ),
  );
  t.pass();
});

test("pushAll releases a batch up to the stop string and drops what follows it", (t) => {
  const m = new StopMatcher(["END"]);
  t.deepEqual(m.pushAll(["a", "b E"]), { texts: ["a"], stopped: false }, "a possible start of END is held back");
  t.deepEqual(m.pushAll(["ND", "after"]), { texts: ["b "], stopped: true });
  t.deepEqual(m.pushAll(["more"]), { texts: [], stopped: true }, "nothing after a stop");
});
