import type { DescEnum } from "@bufbuild/protobuf";
import { customOption, enumDescriptor } from "./proto-registry.js";

/**
 * How the public HTTP/JSON API spells one proto enum. The rule lives in the
 * proto: a value's `(public_name)` option if it has one, else its name without
 * the enum's prefix, lower case, or upper case where the enum says
 * `(public_upper_case)` (ENGINE_LLAMACPP is "llamacpp",
 * CATALOG_MODEL_STATE_ACTIVE is "Active", ERROR_CODE_INVALID_PARAMS is
 * "INVALID_PARAMS").
 */
export interface PublicEnumNames {
  readonly typeName: string;
  /** The public name of a value; undefined for a number the enum does not define. */
  name(value: number): string | undefined;
  /** The value a public name stands for, exactly as spelled; undefined when none does. */
  value(name: string): number | undefined;
  /** Like value(), but ignoring case, for command-line flags and the like. */
  valueIgnoringCase(name: string): number | undefined;
  /** Every public name except the zero (unspecified) value's, in declaration order. */
  readonly names: readonly string[];
  /** How the enum would spell a value named `UNRECOGNIZED`, for text about a number it does not define. */
  readonly unrecognized: string;
}

const cache = new Map<string, PublicEnumNames>();

export function publicEnumNames(typeName: string): PublicEnumNames {
  let names = cache.get(typeName);
  if (!names) cache.set(typeName, (names = build(enumDescriptor(typeName))));
  return names;
}

function build(desc: DescEnum): PublicEnumNames {
  const upper = customOption(desc, "public_upper_case") === true;
  const spell = (unprefixed: string) => (upper ? unprefixed.toUpperCase() : unprefixed.toLowerCase());
  const prefix = desc.sharedPrefix ?? "";
  const byValue = new Map<number, string>();
  const byName = new Map<string, number>();
  const byLowerName = new Map<string, number>();
  for (const v of desc.values) {
    const explicit = customOption(v, "public_name");
    const name = typeof explicit === "string" && explicit !== "" ? explicit : spell(v.name.slice(prefix.length));
    byValue.set(v.number, name);
    byName.set(name, v.number);
    byLowerName.set(name.toLowerCase(), v.number);
  }
  return {
    typeName: desc.typeName,
    name: (value) => byValue.get(value),
    value: (name) => byName.get(name),
    valueIgnoringCase: (name) => byLowerName.get(name.toLowerCase()),
    names: desc.values.filter((v) => v.number !== 0).map((v) => byValue.get(v.number)!),
    unrecognized: spell("UNRECOGNIZED"),
  };
}
