import fc from "fast-check";
import { loadApiDocuments, resolveRef } from "../../contracts/openapi.js";
import type { Json } from "./json.js";

// Requests over every operation of the OpenAPI document, most of them wrong in
// one way a client gets things wrong: a bad id, a field of the wrong type, a
// number past what protobuf carries, unicode, JSON that is not JSON, nesting
// deeper than anyone should send. The fuzz tests and `npm run chaos` send them
// and hold the edge to its contract: no 5xx, an envelope on every error.

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** What kind of wrong this is, for the chaos table and failure messages. */
  kind: string;
}

interface Operation {
  method: string;
  template: string;
  pathParams: string[];
  queryParams: { name: string; schema: unknown }[];
  bodySchema?: unknown;
  bodyExamples: unknown[];
}

const METHODS = ["get", "post", "put", "patch", "delete"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const deref = (node: unknown): unknown => resolveRef(node, "").node;

/** Every operation of the merged contract, with what a request to it is made of. */
export function contractOperations(): Operation[] {
  const ops: Operation[] = [];
  for (const [template, item] of Object.entries(loadApiDocuments().merged.paths)) {
    if (!isObject(item)) continue;
    for (const method of METHODS.filter((m) => isObject(item[m]))) {
      const op = item[method] as Record<string, unknown>;
      const params = [...asList(item.parameters), ...asList(op.parameters)].map(deref).filter(isObject);
      const json = deref(isObject(op.requestBody) ? deref(op.requestBody) : undefined);
      const media = isObject(json) && isObject(json.content) ? json.content["application/json"] : undefined;
      ops.push({
        method: method.toUpperCase(),
        template,
        pathParams: params.filter((p) => p.in === "path").map((p) => String(p.name)),
        queryParams: params.filter((p) => p.in === "query").map((p) => ({ name: String(p.name), schema: p.schema })),
        bodySchema: isObject(media) ? media.schema : undefined,
        bodyExamples:
          isObject(media) && isObject(media.examples)
            ? Object.values(media.examples).map((e) => (deref(e) as { value?: unknown }).value)
            : [],
      });
    }
  }
  return ops;
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

// --- values -------------------------------------------------------------------------

const nastyString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.constantFrom("", " ", "\u0000", "\uFFFD", "\uD800", "../../etc/passwd", "%00", "null", "-1", "1e309", "🦙🦙", "a".repeat(70_000)),
);

const nastyNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 63, 9223372036854775808, 1e300, -1e300, 0.5, Number.MAX_SAFE_INTEGER + 2),
);

/** Any JSON value, or one of the values that broke parsers before. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: nastyString },
  { weight: 2, arbitrary: nastyNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, [], {}) },
);

/** A value for a schema: mostly what it asks for, sometimes not. */
function valueFor(schema: unknown, depth = 0): fc.Arbitrary<unknown> {
  const s = deref(schema);
  if (!isObject(s) || depth > 4) return anyJson;
  const options = [s.oneOf, s.anyOf].find(Array.isArray) as unknown[] | undefined;
  if (options?.length) return fc.oneof(...options.map((o) => valueFor(o, depth + 1)));
  if (Array.isArray(s.allOf) && s.allOf.length) return valueFor(s.allOf[0], depth + 1);
  if (Array.isArray(s.enum) && s.enum.length)
    return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...(s.enum as unknown[])) }, { weight: 1, arbitrary: anyJson });
  switch (s.type) {
    case "integer":
    case "number": {
      const min = typeof s.minimum === "number" ? s.minimum : -1e6;
      const max = typeof s.maximum === "number" ? s.maximum : 1e6;
      const inRange =
        s.type === "integer"
          ? fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) })
          : fc.double({ min, max, noNaN: true });
      return fc.oneof(
        { weight: 3, arbitrary: inRange },
        { weight: 1, arbitrary: fc.constantFrom(min - 1, max + 1, min, max) },
        { weight: 1, arbitrary: nastyNumber },
      );
    }
    case "string":
      return s.format === "uuid" ? fc.oneof(fc.uuid(), nastyString) : nastyString;
    case "boolean":
      return fc.oneof({ weight: 4, arbitrary: fc.boolean() }, { weight: 1, arbitrary: anyJson });
    case "array":
      return fc.array(valueFor(s.items, depth + 1), { maxLength: 4 });
    case "object":
      return objectFor(s, depth);
    default:
      return anyJson;
  }
}

function objectFor(s: Record<string, unknown>, depth: number): fc.Arbitrary<unknown> {
  const props = isObject(s.properties) ? s.properties : {};
  const required = new Set(asList(s.required).map(String));
  const shape: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, schema] of Object.entries(props)) shape[name] = valueFor(schema, depth + 1);
  const requiredKeys = Object.keys(shape).filter((k) => required.has(k));
  return fc.record(shape, { requiredKeys });
}

// --- bodies -------------------------------------------------------------------------

/** JSON nested `levels` deep, written without recursion. */
export function deepJson(levels: number): string {
  return "[".repeat(levels) + "]".repeat(levels);
}

/** A documented example with one of its fields set to something else. */
function mutatedExample(examples: unknown[]): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...examples), fc.nat(), anyJson, fc.boolean()).map(([example, pick, value, remove]) => {
    const copy = structuredClone(example) as Json;
    if (!isObject(copy)) return JSON.stringify(value);
    const keys = Object.keys(copy);
    const key = keys.length ? keys[pick % keys.length]! : "extra";
    if (remove) delete copy[key];
    else copy[key] = value;
    return JSON.stringify(copy);
  });
}

const brokenText = fc.constantFrom(
  "{",
  '{"a":',
  "[1,]",
  "nul",
  "\u0000",
  '{"prompt":"\uD800"}',
  "{}{}",
  "\uFEFF{}",
  deepJson(70),
  deepJson(5000),
);

function bodyFor(op: Operation): fc.Arbitrary<{ body: string; kind: string }> {
  const tagged = (kind: string, a: fc.Arbitrary<string>) => a.map((body) => ({ body, kind }));
  const choices = [
    {
      weight: 2,
      arbitrary: tagged(
        "schema-shaped body",
        valueFor(op.bodySchema).map((v) => JSON.stringify(v) ?? "null"),
      ),
    },
    {
      weight: 1,
      arbitrary: tagged(
        "any JSON body",
        anyJson.map((v) => JSON.stringify(v)),
      ),
    },
    { weight: 1, arbitrary: tagged("malformed JSON", brokenText) },
  ];
  if (op.bodyExamples.length) {
    choices.push({ weight: 3, arbitrary: tagged("example with one field changed", mutatedExample(op.bodyExamples)) });
    choices.push({ weight: 1, arbitrary: tagged("documented example", fc.constantFrom(...op.bodyExamples.map((e) => JSON.stringify(e)))) });
  }
  return fc.oneof(...choices);
}

// --- requests -----------------------------------------------------------------------

// encodeURIComponent throws on half a surrogate pair; the body carries those instead.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const pathValue = fc.oneof(
  { weight: 3, arbitrary: fc.uuid() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "default",
      "not-a-uuid",
      "%00",
      "..",
      "%2e%2e%2f",
      "🦙",
      "a".repeat(5000),
      "%E0%A4%A",
      "00000000-0000-0000-0000-000000000000",
    ),
  },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 10 }).map((v) => encodeURIComponent(v.replace(LONE_SURROGATE, "\uFFFD"))) },
);

function pathFor(op: Operation): fc.Arbitrary<string> {
  return fc.tuple(...op.pathParams.map(() => pathValue)).map((values) => {
    let i = 0;
    return op.template.replace(/\{[^}]+\}/g, () => values[i++] ?? "x");
  });
}

function queryFor(op: Operation): fc.Arbitrary<string> {
  if (!op.queryParams.length) return fc.constant("");
  const pairs = op.queryParams.map((q) =>
    fc.option(
      fc
        .oneof(valueFor(q.schema), nastyString)
        .map(
          (v) =>
            `${encodeURIComponent(q.name)}=${encodeURIComponent((typeof v === "string" ? v : (JSON.stringify(v) ?? "")).replace(LONE_SURROGATE, "\uFFFD"))}`,
        ),
    ),
  );
  return fc.tuple(...pairs).map((ps) => {
    const set = ps.filter((p): p is string => p !== null);
    return set.length ? `?${set.join("&")}` : "";
  });
}

const headerNoise = fc.record(
  {
    "Content-Type": fc.constantFrom("application/json", "text/plain", "application/json; charset=latin1", "multipart/form-data"),
    "X-Correlation-Id": fc.oneof(fc.uuid(), fc.constantFrom("not-a-uuid", "a".repeat(300))),
    Accept: fc.constantFrom("text/event-stream", "application/json", "*/*", "image/png"),
    "X-Priority": fc.constantFrom("interactive", "batch", "urgent", ""),
  },
  { requiredKeys: [] },
);

/** One request to one operation of the contract, usually wrong in some way. */
export function requestFor(op: Operation, apiKey: string | undefined): fc.Arbitrary<FuzzRequest> {
  const hasBody = op.method !== "GET" && op.method !== "DELETE";
  return fc
    .tuple(pathFor(op), queryFor(op), hasBody ? bodyFor(op) : fc.constant(undefined), headerNoise, fc.boolean())
    .map(([path, query, body, noise, withKey]) => {
      const headers: Record<string, string> = { "Content-Type": "application/json", ...noise };
      if (apiKey && withKey) headers.Authorization = `Bearer ${apiKey}`;
      return { method: op.method, path: path + query, headers, body: body?.body, kind: body?.kind ?? "path and query" };
    });
}

/** Requests over every operation of the contract. */
export function anyContractRequest(apiKey?: string): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(...contractOperations().map((op) => requestFor(op, apiKey)));
}
