// A small reader for the Prometheus text exposition format, enough for an
// engine's /metrics (llama.cpp, vLLM): samples with labels and values,
// comments skipped.

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * Every sample of `text`. Lines that do not parse are skipped rather than
 * failing the scrape: one odd metric must not hide the ones we read.
 * Handles quoted label values with escapes (\\, \", \n) and commas or braces
 * inside them, NaN and ±Inf values, and an optional timestamp.
 */
export function parsePromText(text: string): PromSample[] {
  const samples: PromSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

function parseLine(line: string): PromSample | undefined {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) return undefined;
  const name = nameMatch[0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    const end = parseLabels(line, i + 1, labels);
    if (end < 0) return undefined;
    i = end;
  }
  const [valueText] = line.slice(i).trim().split(/\s+/);
  const value = parseValue(valueText ?? "");
  return value === undefined ? undefined : { name, labels, value };
}

/** Fills `labels` from `line` starting after "{"; returns the index after "}", or -1 when malformed. */
function parseLabels(line: string, start: number, labels: Record<string, string>): number {
  let i = start;
  for (;;) {
    while (line[i] === " " || line[i] === ",") i++;
    if (line[i] === "}") return i + 1;
    const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
    if (!key) return -1;
    i += key[0].length;
    while (line[i] === " ") i++;
    if (line[i] !== "=") return -1;
    i++;
    while (line[i] === " ") i++;
    if (line[i] !== '"') return -1;
    i++;
    let value = "";
    for (;;) {
      if (i >= line.length) return -1;
      const c = line[i]!;
      if (c === '"') break;
      if (c === "\\" && i + 1 < line.length) {
        const next = line[i + 1]!;
        value += next === "n" ? "\n" : next;
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    labels[key[0]] = value;
    i++;
  }
}

function parseValue(text: string): number | undefined {
  switch (text) {
    case "NaN":
      return NaN;
    case "+Inf":
    case "Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
  }
  if (text === "" || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** The sum of a metric's finite samples (e.g. a gauge split by label), or undefined when it is absent. */
export function sumOf(samples: readonly PromSample[], name: string): number | undefined {
  let total: number | undefined;
  for (const s of samples) {
    if (s.name === name && Number.isFinite(s.value)) total = (total ?? 0) + s.value;
  }
  return total;
}

/** The largest finite sample of a metric, or undefined when it is absent. */
export function maxOf(samples: readonly PromSample[], name: string): number | undefined {
  let max: number | undefined;
  for (const s of samples) {
    if (s.name === name && Number.isFinite(s.value)) max = max === undefined ? s.value : Math.max(max, s.value);
  }
  return max;
}

/**
 * The value of the first sample named `name` whose labels include every pair
 * of `labels`; undefined when there is none.
 */
export function sampleValue(samples: readonly PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  for (const s of samples) {
    if (s.name === name && wanted.every(([k, v]) => s.labels[k] === v)) return s.value;
  }
  return undefined;
}
