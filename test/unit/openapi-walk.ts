// Reading the OpenAPI documents as plain JSON: their operations, $refs resolved,
// and every node with its JSON pointer.
import type { OpenApiDoc } from "../../contracts/openapi.js";

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const METHODS = ["get", "put", "post", "delete", "patch"];

export function operationsOf(doc: OpenApiDoc): Array<{ method: string; path: string; op: Json; pointer: string }> {
  const out = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (isObject(op)) out.push({ method, path, op, pointer: `/paths/${path.replace(/~/g, "~0").replace(/\//g, "~1")}/${method}` });
    }
  }
  return out;
}

export function deref(doc: OpenApiDoc, node: unknown): unknown {
  while (isObject(node) && typeof node.$ref === "string") {
    node = node.$ref
      .slice(2)
      .split("/")
      .reduce<unknown>((at, t) => (isObject(at) ? at[t.replace(/~1/g, "/").replace(/~0/g, "~")] : undefined), doc);
  }
  return node;
}

export function walk(node: unknown, pointer: string, visit: (node: Json, pointer: string) => void): void {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, `${pointer}/${i}`, visit));
  if (!isObject(node)) return;
  visit(node, pointer);
  for (const [k, v] of Object.entries(node)) {
    // Example payloads are data, not contract structure.
    if (k === "example" || k === "value") continue;
    walk(v, `${pointer}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`, visit);
  }
}
