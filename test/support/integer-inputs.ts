// Every integer a client can send: the integer schemas of each operation's
// request body (by the JSON pointer of the value in a body), query parameters
// and headers, read from the OpenAPI documents.
import type { OpenApiDoc } from "../../contracts/openapi.js";
import type { Json } from "./json.js";

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

export interface IntegerInput {
  operationId: string;
  method: string;
  /** The path template, e.g. /v1/pools/{id}/drain. */
  path: string;
  in: "body" | "query" | "header";
  /** Body: the JSON pointer of the value (array items as /0); query and header: the parameter's name. */
  name: string;
  minimum?: number;
  maximum?: number;
}

const METHODS = ["get", "put", "post", "delete", "patch"];
/** Deeper than any request schema nests; stops a recursive schema from looping. */
const MAX_SCHEMA_DEPTH = 12;

function deref(doc: OpenApiDoc, node: unknown): unknown {
  while (isNode(node) && typeof node.$ref === "string") {
    node = node.$ref
      .slice(2)
      .split("/")
      .reduce<unknown>((at, t) => (isNode(at) ? at[t.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
  }
  return node;
}

function isInteger(schema: Node): boolean {
  return schema.type === "integer" || (Array.isArray(schema.type) && schema.type.includes("integer"));
}

function bounds(schema: Node): Pick<IntegerInput, "minimum" | "maximum"> {
  return {
    minimum: typeof schema.minimum === "number" ? schema.minimum : undefined,
    maximum: typeof schema.maximum === "number" ? schema.maximum : undefined,
  };
}

/** The pointers of every integer a body of `schema` may hold, with their schemas. */
function bodyIntegers(doc: OpenApiDoc, schema: unknown, pointer: string, depth: number, out: Array<[string, Node]>): void {
  const s = deref(doc, schema);
  if (!isNode(s) || depth > MAX_SCHEMA_DEPTH) return;
  if (isInteger(s)) out.push([pointer, s]);
  for (const key of ["allOf", "anyOf", "oneOf"]) {
    if (Array.isArray(s[key])) for (const branch of s[key] as unknown[]) bodyIntegers(doc, branch, pointer, depth + 1, out);
  }
  if (isNode(s.properties)) {
    for (const [name, child] of Object.entries(s.properties)) {
      bodyIntegers(doc, child, `${pointer}/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`, depth + 1, out);
    }
  }
  if (s.items !== undefined) bodyIntegers(doc, s.items, `${pointer}/0`, depth + 1, out);
}

export function requestIntegerInputs(doc: OpenApiDoc): IntegerInput[] {
  const out: IntegerInput[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!isNode(op)) continue;
      const operationId = String(op.operationId);
      const params = [...(Array.isArray(item.parameters) ? item.parameters : []), ...(Array.isArray(op.parameters) ? op.parameters : [])];
      for (const p of params.map((x) => deref(doc, x))) {
        const schema = isNode(p) ? deref(doc, p.schema) : undefined;
        if (!isNode(p) || !isNode(schema) || !isInteger(schema) || (p.in !== "query" && p.in !== "header")) continue;
        out.push({ operationId, method, path, in: p.in, name: String(p.name), ...bounds(schema) });
      }
      const body = deref(doc, op.requestBody);
      const json = isNode(body) && isNode(body.content) ? body.content["application/json"] : undefined;
      if (!isNode(json)) continue;
      const found: Array<[string, Node]> = [];
      bodyIntegers(doc, json.schema, "", 0, found);
      const seen = new Set<string>();
      for (const [pointer, schema] of found) {
        if (seen.has(pointer)) continue;
        seen.add(pointer);
        out.push({ operationId, method, path, in: "body", name: pointer, ...bounds(schema) });
      }
    }
  }
  return out;
}

/** A copy of `body` with `value` at `pointer`, creating the objects (and one-item arrays) on the way. */
export function withValueAt(body: Json, pointer: string, value: unknown): Json {
  const copy: Json = structuredClone(body);
  const tokens = pointer
    .split("/")
    .slice(1)
    .map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  let at: Json = copy;
  tokens.forEach((token, i) => {
    if (i === tokens.length - 1) {
      at[token] = value;
      return;
    }
    const nextIsItem = tokens[i + 1] === "0";
    if (typeof at[token] !== "object" || at[token] === null) at[token] = nextIsItem ? [{}] : {};
    if (nextIsItem && Array.isArray(at[token]) && at[token].length === 0) at[token].push({});
    at = at[token];
  });
  return copy;
}
