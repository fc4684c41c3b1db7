/**
 * Deterministic JSON: the bytes that artifact ids are hashed from, so two
 * documents that JSON considers equal must always produce the same string.
 * Anything JSON.stringify would silently change (NaN -> null, Date -> string,
 * Map -> {}, a hole or undefined in an array -> null) is refused instead,
 * because a silent change would make the id describe something other than
 * what the caller sent.
 */

type PathSegment = string | number;

/** A TypeError that also says where in the value the problem is, as a JSON pointer. */
export class CanonicalJsonError extends TypeError {
  constructor(
    readonly pointer: string,
    problem: string,
  ) {
    super(`${problem} cannot be represented in JSON (at ${pointer === "" ? "the root" : pointer})`);
    this.name = "CanonicalJsonError";
  }
}

export function canonicalJson(value: unknown): string {
  return encode(value, [], new Set());
}

function encode(value: unknown, path: PathSegment[], open: Set<object>): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw fail(path, `the number ${value}`);
      return JSON.stringify(value);
    case "object":
      return value === null ? "null" : encodeObject(value, path, open);
    default:
      throw fail(path, typeof value === "undefined" ? "undefined" : `a ${typeof value}`);
  }
}

function encodeObject(value: object, path: PathSegment[], open: Set<object>): string {
  if (open.has(value)) throw fail(path, "a circular reference");
  open.add(value);
  try {
    if (Array.isArray(value)) {
      const items: string[] = [];
      for (let i = 0; i < value.length; i++) {
        path.push(i);
        items.push(encode(value[i], path, open));
        path.pop();
      }
      return `[${items.join(",")}]`;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw fail(path, `a ${Object.prototype.toString.call(value).slice(8, -1)} object`);
    }
    if (Object.getOwnPropertySymbols(value).some((s) => Object.prototype.propertyIsEnumerable.call(value, s))) {
      throw fail(path, "a symbol-keyed property");
    }
    const record = value as Record<string, unknown>;
    const members: string[] = [];
    // Default sort compares UTF-16 code units, which is the order we promise.
    for (const key of Object.keys(record).sort()) {
      const member = record[key];
      if (member === undefined) continue; // as JSON.stringify: an absent member, not a value
      path.push(key);
      members.push(`${JSON.stringify(key)}:${encode(member, path, open)}`);
      path.pop();
    }
    return `{${members.join(",")}}`;
  } finally {
    // Only the current path counts as a cycle; the same object twice side by side is fine.
    open.delete(value);
  }
}

function fail(path: PathSegment[], problem: string): CanonicalJsonError {
  const pointer = path.map((s) => `/${String(s).replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
  return new CanonicalJsonError(pointer, problem);
}
