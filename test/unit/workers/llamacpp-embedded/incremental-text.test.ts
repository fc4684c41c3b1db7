import test from "ava";
import fc from "fast-check";
import { isWellFormedText } from "../helpers.js";
import { IncrementalText, MAX_HELD_TOKENS, type Detokenize } from "../../../../workers/llamacpp-embedded/incremental-text.js";

// A byte-level tokenizer in the SentencePiece style: ids below 256 are byte
// tokens, the rest are word pieces that start with a space, and a rendering
// drops the leading space of its first piece unless tokens come before it
// (llama.cpp's rule, which is why the incremental decoder passes context).
const PIECES = [" the", " llama", " é", " 日本", "s", "."];
const piece = (i: number) => PIECES[i - 256]!;
const bytesOf = (id: number): Buffer => (id < 256 ? Buffer.from([id]) : Buffer.from(piece(id), "utf8"));

const detokenize: Detokenize = (tokens, before) => {
  const text = new TextDecoder("utf-8").decode(Buffer.concat(tokens.map(bytesOf)));
  return before.length === 0 && text.startsWith(" ") ? text.slice(1) : text;
};

function run(tokens: number[], prompt: number[] = [256]): string[] {
  const it = new IncrementalText(detokenize, prompt);
  return [...tokens.flatMap((t) => it.push(t)), ...it.flush()];
}

const utf8Tokens = (s: string) => [...Buffer.from(s, "utf8")];

test("a character split over byte tokens comes out whole, on the token that completes it", (t) => {
  // "日" is E6 97 A5: three tokens, one character.
  t.deepEqual(run([257, ...utf8Tokens("日"), 261]), [" llama", "", "", "日", "."]);
});

test("the first output token keeps its leading space: the prompt is its context", (t) => {
  t.deepEqual(run([256, 257]), [" the", " llama"]);
  t.deepEqual(run([256, 257], []), ["the", " llama"]);
});

test("a character whose lead byte comes after three stray bytes still comes out whole", (t) => {
  // Three lone continuation bytes, then "Â" (C2 80): the strays are given up on, the character is not.
  const out = run([0x80, 0x80, 0x80, 0xc2, 0x80]);
  t.is(out.length, 5);
  t.true(out.every(isWellFormedText));
  t.is(out.join("").replace(/\uFFFD/g, ""), "\u0080");
});

test("bytes that can never form a character are emitted as U+FFFD after at most four tokens, never held forever", (t) => {
  const lone = 0x80; // a continuation byte with no lead byte
  const out = run([lone, lone, lone, lone, lone, 256]);
  t.is(out.length, 6);
  t.true(out.slice(0, MAX_HELD_TOKENS).join("").includes("\uFFFD"));
  t.is(out.join(""), detokenize([lone, lone, lone, lone, lone, 256], [256]));
});

test("an incomplete character at the end of a generation is flushed, not dropped", (t) => {
  const out = run([257, 0xe6, 0x97]);
  t.deepEqual(out.slice(0, 1), [" llama"]);
  t.is(out.length, 3);
  t.is(out.join(""), " llama\uFFFD");
});

test("property: one text per token, always well-formed; for valid UTF-8 exactly the whole rendering, with no U+FFFD", (t) => {
  const token = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 256, max: 256 + PIECES.length - 1 }));
  fc.assert(
    fc.property(fc.array(token, { maxLength: 60 }), (tokens) => {
      const out = run(tokens);
      return out.length === tokens.length && out.every(isWellFormedText);
    }),
  );
  const validText = fc.array(
    fc.oneof(fc.constantFrom(...PIECES.map((_, i) => [256 + i])), fc.string({ unit: "grapheme", maxLength: 3 }).map(utf8Tokens)),
  );
  fc.assert(
    fc.property(validText, (parts) => {
      const out = run(parts.flat());
      return out.join("") === detokenize(parts.flat(), [256]) && !out.join("").includes("\uFFFD") && out.length === parts.flat().length;
    }),
  );
  t.pass();
});
