// The demo model's SentencePiece-style vocabulary ("llama" tokenizer):
// control tokens, the 256 byte-fallback tokens, and word pieces. llama.cpp's
// SPM tokenizer builds a word by merging adjacent pieces whose concatenation
// is in the vocabulary, so every word comes with all of its prefixes; what
// is not covered falls back to byte tokens, as in real models.

/** llama.cpp token types (llama.h `llama_token_type`). */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

export interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
  bos: number;
  eos: number;
  unknown: number;
}

const WORDS = `the a an and or of to in on is are was be it that this with for as at by from llama llamas alpaca
animal animals wool field farm mountain andes herd grass water sun sky cloud rain snow river tree stone road
hello world tell me about story once upon time there lived small big old young happy quiet fast slow
model token text stream prompt answer question why how what when where who which yes no not very more
most some many one two three first last next day night morning evening light dark red green blue white
orchestrator queue worker engine replica pool core edge cancel deadline session budget`.split(/\s+/);

/** Multi-byte characters with a token of their own; others fall back to bytes mid-character. */
const UNICODE = ["é", "ñ", "ü", "日", "本", "語", "🦙"];

const SPACE = "\u2581";

export function demoVocabulary(): Vocabulary {
  const tokens: string[] = [];
  const types: number[] = [];
  const add = (piece: string, type: number) => {
    tokens.push(piece);
    types.push(type);
  };
  add("<unk>", UNKNOWN);
  add("<s>", CONTROL);
  add("</s>", CONTROL);
  add("<|im_start|>", CONTROL);
  add("<|im_end|>", CONTROL);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, BYTE);
  const pieces = new Set<string>([SPACE, ".", ",", "!", "?", "\n", ...UNICODE]);
  for (let c = 97; c <= 122; c++) pieces.add(String.fromCharCode(c));
  for (const word of WORDS) {
    const spaced = SPACE + word;
    for (let i = 2; i <= spaced.length; i++) pieces.add(spaced.slice(0, i));
  }
  for (const p of pieces) add(p, NORMAL);
  // SPM merges the pair with the highest score first: longer pieces win, so whole words form.
  const scores = tokens.map((t, i) => (types[i] === NORMAL ? t.length - i / 1e4 : 0));
  return { tokens, scores, types, bos: 1, eos: 2, unknown: 0 };
}
