import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";

// Arbitrary ts-proto messages of any type in proto/, built from its descriptor:
// every field set the way ts-proto holds it (defaults included, undefined for
// unset presence), 64-bit integers as safe numbers.

const key = fc.string({ maxLength: 6 }).filter((k) => k !== "__proto__");
// Through JSON text: plain prototypes, as parsed documents have.
/** JSON without "__proto__" keys, which the codec refuses (see public-json.ts). */
const json = fc
  .jsonValue({ maxDepth: 2 })
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  .filter((v) => !JSON.stringify(v).includes('"__proto__":'));

function scalar(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return fc.string({ maxLength: 8 });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
      // -0 is 0 once in JSON text.
      return fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v));
    case ScalarType.FLOAT:
      // A float field holds 32 bits: only values a float32 represents survive the binary codec.
      return fc.float({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v));
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.integer({ min: 0, max: 2 ** 32 - 1 });
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.maxSafeNat();
    default:
      return fc.maxSafeInteger();
  }
}

function single(f: DescField, depth: number): fc.Arbitrary<unknown> {
  if (f.message) return nested(f.message, depth);
  if (f.enum) return fc.constantFrom(...f.enum.values.map((v) => v.number));
  return scalar(f.scalar);
}

function nested(desc: DescMessage, depth: number): fc.Arbitrary<unknown> {
  if (desc.typeName === "google.protobuf.Struct") return fc.dictionary(key, json, { maxKeys: 3, noNullPrototype: true });
  if (desc.typeName === "google.protobuf.ListValue") return fc.array(json, { maxLength: 3 });
  if (desc.typeName === "google.protobuf.Value") return json;
  return arbitraryMessage(desc, depth + 1);
}

function field(f: DescField, depth: number): fc.Arbitrary<unknown> {
  if (f.fieldKind === "list") return fc.array(single(f, depth), { maxLength: depth > 2 ? 0 : 3 });
  if (f.fieldKind === "map") return fc.dictionary(key, single(f, depth), { maxKeys: 3, noNullPrototype: true });
  if (f.fieldKind === "message") return depth > 2 ? fc.constant(undefined) : fc.option(single(f, depth), { nil: undefined });
  const value = single(f, depth);
  return f.presence === FeatureSet_FieldPresence.EXPLICIT ? fc.option(value, { nil: undefined }) : value;
}

export function arbitraryMessage(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) if (!f.oneof) parts[f.localName] = field(f, depth);
  for (const o of desc.oneofs) {
    const members = o.fields.map((m) => single(m, depth).map((value) => ({ $case: m.localName, [m.localName]: value })));
    parts[o.localName] = depth > 2 ? fc.constant(undefined) : fc.option(fc.oneof(...members), { nil: undefined });
  }
  return fc.record(parts, { noNullPrototype: true });
}
