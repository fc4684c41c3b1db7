import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { customOption, messageDescriptor } from "./proto-registry.js";
import { publicEnumNames } from "./public-enum-names.js";

// The one mapping between the public HTTP/JSON API and the generated (ts-proto)
// messages, driven by the message descriptors rather than written per message:
//
// - a field is the member named by its proto name (snake_case); unknown members
//   are ignored, as the OpenAPI documents promise;
// - an enum is its public name (public-enum-names.ts);
// - 64-bit integers are JSON numbers, as ts-proto holds them (forceLong=number);
// - google.protobuf.Struct, ListValue and Value are the JSON itself;
// - decoding sets every field, as ts-proto's create() does: defaults where a
//   member is absent, undefined for an absent field with presence;
// - encoding writes a field with presence (optional, message, oneof member)
//   only when set, and every other field always, except that a field marked
//   `(omit_empty)` is left out while empty.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** A member of the wrong kind, or a value JSON cannot carry. `field` is the JSON pointer of the innermost field at fault. */
export class PublicJsonError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "PublicJsonError";
  }
}

export interface PublicJsonCodec<T> {
  readonly typeName: string;
  /** The message a public JSON document stands for; throws PublicJsonError. */
  decode(json: unknown): T;
  /** The public JSON of a message; throws PublicJsonError for what JSON cannot carry (NaN, an enum number without a name). */
  encode(message: T): JsonObject;
}

/** The codec for one message type; `T` is its generated interface, `typeName` its full proto name. */
export function publicJson<T>(typeName: string): PublicJsonCodec<T> {
  let desc: DescMessage | undefined;
  const resolve = () => (desc ??= supported(messageDescriptor(typeName)));
  return {
    typeName,
    decode: (json) => bounded(() => decodeMessage(resolve(), json, "", 1) as T),
    encode: (message) => bounded(() => encodeMessage(resolve(), message, "")),
  };
}

const fail = (at: string, problem: string) => new PublicJsonError(at, `${at || "the value"} ${problem}`);
const member = (at: string, key: string) => `${at}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;

/** Input deep enough to exhaust the stack is a value we refuse, not a crash. */
function bounded<R>(work: () => R): R {
  try {
    return work();
  } catch (err) {
    if (err instanceof RangeError && /call stack/i.test(err.message)) throw new PublicJsonError("", "the value is nested too deeply");
    throw err;
  }
}

const JSON_TYPES = new Set(["google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"]);

/** Refuses, once per codec, message types whose ts-proto form this mapping does not know (bytes, other well-known types). */
function supported(desc: DescMessage, seen = new Set<string>()): DescMessage {
  if (seen.has(desc.typeName) || JSON_TYPES.has(desc.typeName)) return desc;
  seen.add(desc.typeName);
  if (desc.typeName.startsWith("google.protobuf.")) throw new Error(`public JSON: ${desc.typeName} is not supported`);
  for (const f of desc.fields) {
    if (f.scalar === ScalarType.BYTES) throw new Error(`public JSON: bytes field ${desc.typeName}.${f.name} is not supported`);
    if (f.message) supported(f.message, seen);
  }
  return desc;
}

// ---------------------------------------------------------------------------------------
// Scalars and enums

const INTEGER_RANGES: Partial<Record<ScalarType, [number, number, string, string]>> = {
  [ScalarType.INT32]: [-(2 ** 31), 2 ** 31 - 1, "a 32-bit integer", "32-bit integers"],
  [ScalarType.SINT32]: [-(2 ** 31), 2 ** 31 - 1, "a 32-bit integer", "32-bit integers"],
  [ScalarType.SFIXED32]: [-(2 ** 31), 2 ** 31 - 1, "a 32-bit integer", "32-bit integers"],
  [ScalarType.UINT32]: [0, 2 ** 32 - 1, "a non-negative 32-bit integer", "non-negative 32-bit integers"],
  [ScalarType.FIXED32]: [0, 2 ** 32 - 1, "a non-negative 32-bit integer", "non-negative 32-bit integers"],
  [ScalarType.INT64]: [-(2 ** 63), 2 ** 63, "an integer", "integers"],
  [ScalarType.SINT64]: [-(2 ** 63), 2 ** 63, "an integer", "integers"],
  [ScalarType.SFIXED64]: [-(2 ** 63), 2 ** 63, "an integer", "integers"],
  [ScalarType.UINT64]: [0, 2 ** 64, "a non-negative integer", "non-negative integers"],
  [ScalarType.FIXED64]: [0, 2 ** 64, "a non-negative integer", "non-negative integers"],
};

function scalarOk(type: ScalarType, v: unknown): boolean {
  if (type === ScalarType.STRING) return typeof v === "string";
  if (type === ScalarType.BOOL) return typeof v === "boolean";
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  const range = INTEGER_RANGES[type];
  // 64-bit bounds are exclusive: 2^63 and 2^64 are the first doubles outside the type.
  return !range || (Number.isInteger(v) && v >= range[0] && (range[1] >= 2 ** 63 ? v < range[1] : v <= range[1]));
}

function scalarKind(type: ScalarType, many: boolean): string {
  const range = INTEGER_RANGES[type];
  if (range) return many ? range[3] : range[2];
  if (type === ScalarType.STRING) return many ? "strings" : "a string";
  if (type === ScalarType.BOOL) return many ? "booleans" : "true or false";
  return many ? "finite numbers" : "a finite number";
}

function enumName(desc: DescEnum, v: unknown, at: string): string {
  const name = typeof v === "number" ? publicEnumNames(desc.typeName).name(v) : undefined;
  if (name === undefined) throw fail(at, `holds ${String(v)}, which is not a value of ${desc.typeName}`);
  return name;
}

// ---------------------------------------------------------------------------------------
// Free-form JSON (Struct, ListValue, Value): copied, and refused where JSON would change it.

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function copyJson(v: unknown, at: string): JsonValue {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      if (!Number.isFinite(v)) throw fail(at, `is ${v}, which JSON cannot represent`);
      return v;
    case "object": {
      if (v === null) return null;
      if (Array.isArray(v)) {
        const items: JsonValue[] = [];
        for (let i = 0; i < v.length; i++) {
          if (v[i] === undefined) throw fail(`${at}/${i}`, "is undefined, which JSON cannot represent");
          items.push(copyJson(v[i], `${at}/${i}`));
        }
        return items;
      }
      if (!isPlainObject(v)) throw fail(at, `is a ${Object.prototype.toString.call(v).slice(8, -1)} object, which JSON cannot represent`);
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, m]) => m !== undefined)
          .map(([k, m]) => [carriedKey(k, at), copyJson(m, member(at, k))]),
      );
    }
    default:
      throw fail(at, `is ${v === undefined ? "undefined" : `a ${typeof v}`}, which JSON cannot represent`);
  }
}

/**
 * The generated protobuf code stores object keys by assignment, so a key named
 * "__proto__" would be lost between edge and core (or change an object's
 * prototype). It is refused where it appears instead of silently dropped.
 */
function carriedKey(key: string, at: string): string {
  if (key === "__proto__") throw fail(member(at, key), "is a key named __proto__, which cannot be carried");
  return key;
}

/**
 * Protobuf decoders stop at 100 nested messages (ts-proto's generated code,
 * like the C++ and Go runtimes), and free-form JSON costs several per level:
 * a Struct, a map entry and a Value for each object. A decoded message nests
 * at most this many, so wrapped in the request that carries it (a few levels
 * more) core can still decode it.
 */
export const MAX_MESSAGE_NESTING = 96;

/** Whether a Value holding `v` (and what it holds) fits in `budget` nested messages. */
function valueFits(v: unknown, budget: number): boolean {
  if (budget < 1) return false;
  if (Array.isArray(v)) return listFits(v, budget - 1);
  return isPlainObject(v) ? structFits(v, budget - 1) : true;
}

/** A Struct, then per member its map entry and Value. */
function structFits(v: Record<string, unknown>, budget: number): boolean {
  return budget >= 1 && Object.values(v).every((m) => m === undefined || valueFits(m, budget - 2));
}

/** A ListValue, then per item its Value. */
function listFits(v: unknown[], budget: number): boolean {
  return budget >= 1 && v.every((item) => valueFits(item, budget - 1));
}

function fitsNesting(typeName: string, v: unknown, budget: number): boolean {
  if (typeName === "google.protobuf.Struct") return structFits(v as Record<string, unknown>, budget);
  if (typeName === "google.protobuf.ListValue") return listFits(v as unknown[], budget);
  return valueFits(v, budget);
}

function copyWellKnown(typeName: string, v: unknown, at: string): JsonValue {
  if (typeName === "google.protobuf.Struct" && !isPlainObject(v)) throw fail(at, "must be a JSON object");
  if (typeName === "google.protobuf.ListValue" && !Array.isArray(v)) throw fail(at, "must be a list");
  return copyJson(v, at);
}

// ---------------------------------------------------------------------------------------
// Decoding

function defaultOf(f: DescField): unknown {
  if (f.fieldKind === "list") return [];
  if (f.fieldKind === "map") return {};
  if (f.fieldKind === "message" || f.presence === FeatureSet_FieldPresence.EXPLICIT) return undefined;
  if (f.fieldKind === "enum") return 0;
  return f.scalar === ScalarType.STRING ? "" : f.scalar === ScalarType.BOOL ? false : 0;
}

/** `level`: how many messages deep this one is, itself included (the decoded message is 1). */
function decodeMessage(desc: DescMessage, json: unknown, at: string, level: number): Record<string, unknown> {
  if (!isPlainObject(json)) throw fail(at, "must be an object");
  const out: Record<string, unknown> = {};
  for (const f of desc.fields) if (!f.oneof) out[f.localName] = defaultOf(f);
  for (const o of desc.oneofs) out[o.localName] = undefined;
  for (const f of desc.fields) {
    const v = json[f.name];
    if (v === undefined) continue;
    const value = decodeField(f, v, member(at, f.name), level);
    if (!f.oneof) out[f.localName] = value;
    else if (out[f.oneof.localName] !== undefined) throw fail(at, `may hold only one of ${f.oneof.fields.map((m) => m.name).join(", ")}`);
    else out[f.oneof.localName] = { $case: f.localName, [f.localName]: value };
  }
  return out;
}

function decodeField(f: DescField, v: unknown, at: string, level: number): unknown {
  switch (f.fieldKind) {
    case "list":
      if (!Array.isArray(v)) throw fail(at, listProblem(f));
      // Scalars in a list are one value; a message item is addressed by its index.
      return v.map((item, i) =>
        f.listKind === "message" ? decodeNested(f.message, item, `${at}/${i}`, level) : decodeSingle(f, item, at, true),
      );
    case "map":
      if (!isPlainObject(v)) throw fail(at, "must be an object");
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, x]) => x !== undefined)
          .map(([k, x]) => [
            checkMapKey(f.mapKey, carriedKey(k, at), at),
            f.mapKind === "message" ? decodeNested(f.message, x, member(at, k), level) : decodeSingle(f, x, member(at, k), false),
          ]),
      );
    case "message":
      return decodeNested(f.message, v, at, level);
    default:
      return decodeSingle(f, v, at, false);
  }
}

function listProblem(f: DescField): string {
  if (f.enum) return `must be a list of ${publicEnumNames(f.enum.typeName).names.join(", ")}`;
  return f.scalar ? `must be a list of ${scalarKind(f.scalar, true)}` : "must be a list";
}

/** An enum or scalar: a lone field, a map value, or (inList) a list item, reported as its list. */
function decodeSingle(f: DescField, v: unknown, at: string, inList: boolean): unknown {
  if (f.enum) {
    const value = typeof v === "string" ? publicEnumNames(f.enum.typeName).value(v) : undefined;
    if (value === undefined)
      throw fail(at, inList ? listProblem(f) : `must be one of ${publicEnumNames(f.enum.typeName).names.join(", ")}`);
    return value;
  }
  if (!scalarOk(f.scalar!, v)) throw fail(at, inList ? listProblem(f) : `must be ${scalarKind(f.scalar!, false)}`);
  return v;
}

/** A message field of a message `level` deep. */
function decodeNested(desc: DescMessage, v: unknown, at: string, level: number): unknown {
  if (!JSON_TYPES.has(desc.typeName)) return decodeMessage(desc, v, at, level + 1);
  const copy = copyWellKnown(desc.typeName, v, at);
  if (!fitsNesting(desc.typeName, copy, MAX_MESSAGE_NESTING - level)) {
    const objects = Math.floor((MAX_MESSAGE_NESTING - level) / 3);
    throw fail(at, `nests too deeply for protobuf: free-form JSON here holds at most ${objects} levels of objects`);
  }
  return copy;
}

function checkMapKey(type: ScalarType, key: string, at: string): string {
  const ok =
    type === ScalarType.STRING ||
    (type === ScalarType.BOOL ? key === "true" || key === "false" : /^-?\d+$/.test(key) && scalarOk(type, Number(key)));
  if (!ok) throw fail(member(at, key), `is not a valid key (${scalarKind(type, false)})`);
  return key;
}

// ---------------------------------------------------------------------------------------
// Encoding

const omitEmptyCache = new WeakMap<DescField, boolean>();

function omitsEmpty(f: DescField): boolean {
  let omit = omitEmptyCache.get(f);
  if (omit === undefined) omitEmptyCache.set(f, (omit = customOption(f, "omit_empty") === true));
  return omit;
}

const isEmpty = (v: unknown) => v === "" || (Array.isArray(v) ? v.length === 0 : isPlainObject(v) && Object.keys(v).length === 0);

function encodeMessage(desc: DescMessage, message: unknown, at: string): JsonObject {
  if (typeof message !== "object" || message === null) throw fail(at, `must be a ${desc.typeName} message`);
  const m = message as Record<string, unknown>;
  const out: [string, JsonValue][] = [];
  for (const f of desc.fields) {
    const union = f.oneof ? (m[f.oneof.localName] as Record<string, unknown> | undefined) : undefined;
    const v = f.oneof ? (union?.$case === f.localName ? union[f.localName] : undefined) : m[f.localName];
    if (v === undefined || (omitsEmpty(f) && isEmpty(v))) continue;
    out.push([f.name, encodeField(f, v, member(at, f.name))]);
  }
  return Object.fromEntries(out);
}

function encodeField(f: DescField, v: unknown, at: string): JsonValue {
  switch (f.fieldKind) {
    case "list":
      if (!Array.isArray(v)) throw fail(at, listProblem(f));
      return v.map((item, i) => encodeSingle(f, item, `${at}/${i}`));
    case "map":
      if (!isPlainObject(v)) throw fail(at, "must be an object");
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeSingle(f, x, member(at, k))]));
    default:
      return encodeSingle(f, v, at);
  }
}

function encodeSingle(f: DescField, v: unknown, at: string): JsonValue {
  if (f.message) return JSON_TYPES.has(f.message.typeName) ? copyWellKnown(f.message.typeName, v, at) : encodeMessage(f.message, v, at);
  if (f.enum) return enumName(f.enum, v, at);
  if (!scalarOk(f.scalar, v)) throw fail(at, `must be ${scalarKind(f.scalar, false)}`);
  return v as JsonValue;
}
