// Runtime access to the HTTP contract in contracts/openapi/*.yaml: the merged document
// (served at /openapi.json), request validation for the edge, and the lookups (which
// operation serves a request, where a $ref leads) that the tests' response checker in
// test/support/openapi-check.ts builds on. The YAML files stay the single source of truth.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

// ajv-formats is CommonJS: under NodeNext the default import is `module.exports`, and
// the plugin is exposed on it as `.default` both at runtime and in its typings.
const addFormats = addFormatsModule.default;

type Json = Record<string, unknown>;

export interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Json>;
  components?: Record<string, Json>;
  [key: string]: unknown;
}

export interface FieldProblem {
  field: string;
  message: string;
}

const HTTP_METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
const DOC_ID = "llama-orch-openapi";

/** The contract's documents: the native data plane, the control plane, and the OpenAI/Anthropic-compatible APIs. */
export interface ApiDocuments {
  data: OpenApiDoc;
  control: OpenApiDoc;
  compat: OpenApiDoc;
  merged: OpenApiDoc;
}

const DOCUMENT_FILES = { data: "data.yaml", control: "control.yaml", compat: "compat.yaml" } as const;

let documents: ApiDocuments | undefined;

// tsc does not copy YAML into dist/, so the same lookup must work from contracts/ and
// from dist/contracts/: walk up to the project root and read the sources there.
function contractsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: unknown }).name === "llama-orch") {
          return join(dir, "contracts", "openapi");
        }
      } catch {
        // an unreadable package.json belongs to something else; keep walking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("openapi: cannot find the llama-orch project root above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

function readDoc(file: string): OpenApiDoc {
  const doc = parse(readFileSync(join(contractsDir(), file), "utf8")) as OpenApiDoc;
  if (!isObject(doc) || typeof doc.openapi !== "string" || !isObject(doc.info) || !isObject(doc.paths)) {
    throw new Error(`openapi: ${file} is not an OpenAPI document`);
  }
  return doc;
}

export function loadApiDocuments(): ApiDocuments {
  if (!documents) {
    const data = readDoc(DOCUMENT_FILES.data);
    const control = readDoc(DOCUMENT_FILES.control);
    const compat = readDoc(DOCUMENT_FILES.compat);
    documents = { data, control, compat, merged: mergeDocs([data, control, compat], Object.values(DOCUMENT_FILES)) };
  }
  return documents;
}

function mergeDocs(docs: OpenApiDoc[], files: readonly string[]): OpenApiDoc {
  const [first] = docs as [OpenApiDoc, ...OpenApiDoc[]];
  const all = files.join(", ");
  for (const key of ["openapi", "servers", "security"]) {
    if (!docs.every((d) => deepEqual(d[key], first[key]))) throw new Error(`openapi: ${all} disagree on ${key}`);
  }
  if (!docs.every((d) => d.info.version === first.info.version)) throw new Error(`openapi: ${all} have different info.version`);

  const paths: Record<string, Json> = {};
  for (const doc of docs) {
    for (const [path, item] of Object.entries(doc.paths)) {
      if (path in paths) throw new Error(`openapi: path ${path} is defined in more than one document`);
      paths[path] = item;
    }
  }

  // Shared names (Engine, ErrorEnvelope, ...) are written out in each file that uses them so
  // each file stands alone; merging is only sound if every copy says the same thing.
  const components: Record<string, Json> = {};
  for (const doc of docs) {
    for (const [section, entries] of Object.entries(doc.components ?? {})) {
      const target = (components[section] ??= {});
      for (const [name, definition] of Object.entries(entries)) {
        if (name in target && !deepEqual(target[name], definition)) {
          throw new Error(`openapi: components.${section}.${name} is defined differently in ${all}`);
        }
        target[name] = definition;
      }
    }
  }

  const tags = docs.flatMap((d) => asArray(d.tags));
  const description = docs
    .map((d) => d.info.description)
    .filter(Boolean)
    .join("\n");
  return { ...first, info: { ...first.info, title: "llama-orch API", description }, tags, paths, components };
}

export function apiVersion(): string {
  const { data, control, compat } = loadApiDocuments();
  if (data.info.version !== control.info.version || data.info.version !== compat.info.version) {
    throw new Error("openapi: data.yaml, control.yaml and compat.yaml have different info.version");
  }
  return data.info.version;
}

// ---------------------------------------------------------------------------------------
// Schema validation. The whole merged document is registered with ajv once, and every
// schema is compiled by JSON pointer into it, so `#/components/...` refs resolve as-is.

let ajvInstance: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

function validatorAt(pointer: string): ValidateFunction {
  let validate = validators.get(pointer);
  if (!validate) {
    if (!ajvInstance) {
      // strict: false lets OpenAPI-only keywords (example, x-*, discriminator...) pass as
      // annotations; allErrors stays off because callers report only the first problem.
      ajvInstance = new Ajv({ strict: false, allErrors: false });
      addFormats(ajvInstance);
      // ajv-formats' uuid also accepts a "urn:uuid:" prefix, which ids here never carry.
      ajvInstance.addFormat("uuid", /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
      ajvInstance.addSchema(loadApiDocuments().merged, DOC_ID);
    }
    const fragment = pointer.split("/").map(encodeURIComponent).join("/");
    validate = ajvInstance.compile({ $ref: `${DOC_ID}#${fragment}` });
    validators.set(pointer, validate);
  }
  return validate;
}

/** Validates `value` against the schema at `pointer` (a JSON pointer into the merged document). */
export function validateAgainst(pointer: string, value: unknown, rootLabel = "value"): FieldProblem | null {
  const validate = validatorAt(pointer);
  return validate(value) ? null : describe(validate.errors![0]!, rootLabel);
}

const FORMAT_WORDS: Record<string, string> = {
  uuid: "a uuid",
  int32: "a 32-bit integer",
  int64: "a 64-bit integer",
  float: "a number",
  double: "a number",
  "date-time": "an RFC 3339 date-time",
};

function describe(err: ErrorObject, rootLabel: string): FieldProblem {
  const params = err.params as Record<string, unknown>;
  const field = err.keyword === "required" ? `${err.instancePath}/${escapeToken(String(params.missingProperty))}` : err.instancePath;
  const label = field === "" ? rootLabel : field.slice(1).split("/").map(unescapeToken).join(".");
  switch (err.keyword) {
    case "required":
      return { field, message: `missing required field ${label}` };
    case "type": {
      const types = ([] as unknown[]).concat(params.type).map((t) => (/^[aeiou]/.test(String(t)) ? "an " : "a ") + String(t));
      return { field, message: `${label} must be ${types.join(" or ")}` };
    }
    case "format": {
      const format = String(params.format);
      return { field, message: `${label} must be ${FORMAT_WORDS[format] ?? `a valid ${format}`}` };
    }
    case "enum":
      return { field, message: `${label} must be one of ${(params.allowedValues as unknown[]).join(", ")}` };
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return { field, message: `${label} must be ${String(params.comparison)} ${String(params.limit)}` };
    default:
      return { field, message: `${label} ${err.message ?? "is invalid"}` };
  }
}

// ---------------------------------------------------------------------------------------
// Operations

/** One operation of the merged document, and where it sits in it. */
export interface OperationRef {
  operationId: string;
  method: string;
  path: string;
  pattern: RegExp;
  pointer: string;
  node: Json;
  pathItem: Json;
}

let operationIndex: OperationRef[] | undefined;

function operations(): OperationRef[] {
  if (!operationIndex) {
    const { merged } = loadApiDocuments();
    operationIndex = [];
    for (const [path, pathItem] of Object.entries(merged.paths)) {
      for (const method of HTTP_METHODS) {
        const node = pathItem[method];
        if (!isObject(node)) continue;
        const source = path
          .split(/\{[^}]+\}/)
          .map(escapeRegExp)
          .join("[^/]+");
        operationIndex.push({
          operationId: String(node.operationId),
          method,
          path,
          pattern: new RegExp(`^${source}$`),
          pointer: pointerOf("paths", path, method),
          node,
          pathItem,
        });
      }
    }
    // A literal segment must win over a template that would also match it.
    operationIndex.sort((a, b) => templateCount(a.path) - templateCount(b.path));
  }
  return operationIndex;
}

function operation(operationId: string): OperationRef {
  const op = operations().find((o) => o.operationId === operationId);
  if (!op) throw new Error(`openapi: no operation ${operationId}`);
  return op;
}

/** The operation that serves `method` on a concrete path (no query), if the contract has one. */
export function operationFor(method: string, concretePath: string): OperationRef | undefined {
  return operations().find((o) => o.method === method.toLowerCase() && o.pattern.test(concretePath));
}

/**
 * The methods (upper case) the contract declares for the path a concrete path
 * stands for; empty when it has no such path. Every other method on it is a
 * 405 whose Allow lists these (and HEAD with GET).
 */
export function methodsAt(concretePath: string): string[] {
  const path = operations().find((o) => o.pattern.test(concretePath))?.path;
  return operations()
    .filter((o) => o.path === path)
    .map((o) => o.method.toUpperCase());
}

export function requestBodyValidator(operationId: string): (body: unknown) => FieldProblem | null {
  const op = operation(operationId);
  const requestBody = resolveRef(op.node.requestBody, `${op.pointer}/requestBody`);
  const content = isObject(requestBody.node) ? requestBody.node.content : undefined;
  if (!isObject(content) || !isObject(content["application/json"])) {
    throw new Error(`openapi: ${operationId} has no application/json request body`);
  }
  const pointer = `${requestBody.pointer}/content/${escapeToken("application/json")}/schema`;
  validatorAt(pointer); // compile now, not on the first request
  return (body) => {
    if (!isObject(body)) return { field: "", message: "request body must be a JSON object" };
    return validateAgainst(pointer, body, "request body");
  };
}

export function pathParamValidator(operationId: string, name: string): (value: string) => FieldProblem | null {
  const pointer = parameterSchema(operationId, "path", name);
  return (value) => {
    const problem = validateAgainst(pointer, value, name);
    return problem && { field: name, message: problem.message };
  };
}

/**
 * A query parameter as its schema types it: an integer parameter's digits
 * become a number before the check, anything else stays the string it came as.
 */
export function queryParamValidator(operationId: string, name: string): (raw: string) => { value: unknown; problem: FieldProblem | null } {
  const pointer = parameterSchema(operationId, "query", name);
  const schema = resolveRef({ $ref: `#${pointer}` }, pointer).node;
  const numeric = isObject(schema) && (schema.type === "integer" || schema.type === "number");
  return (raw) => {
    const value = numeric && /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
    const problem = validateAgainst(pointer, value, name);
    return { value, problem: problem && { field: name, message: problem.message } };
  };
}

/** Where the schema of an operation's parameter is (compiled now, not on the first request). */
function parameterSchema(operationId: string, location: "path" | "query", name: string): string {
  const op = operation(operationId);
  const candidates = [
    ...asArray(op.pathItem.parameters).map((p, i) => resolveRef(p, `${pointerOf("paths", op.path)}/parameters/${i}`)),
    ...asArray(op.node.parameters).map((p, i) => resolveRef(p, `${op.pointer}/parameters/${i}`)),
  ];
  const param = candidates.find(({ node }) => isObject(node) && node.in === location && node.name === name);
  if (!param) throw new Error(`openapi: ${operationId} has no ${location} parameter ${name}`);
  const pointer = `${param.pointer}/schema`;
  validatorAt(pointer);
  return pointer;
}

// ---------------------------------------------------------------------------------------
// Small helpers

/** Follows local `$ref`s so callers know where the definition actually lives. */
export function resolveRef(node: unknown, pointer: string): { node: unknown; pointer: string } {
  for (let hops = 0; isObject(node) && typeof node.$ref === "string"; hops++) {
    if (hops > 16 || !node.$ref.startsWith("#/")) throw new Error(`openapi: cannot follow $ref ${node.$ref}`);
    pointer = node.$ref.slice(1);
    node = pointer
      .split("/")
      .slice(1)
      .reduce<unknown>(
        (at, token) => (isObject(at) || Array.isArray(at) ? (at as Json)[unescapeToken(token)] : undefined),
        loadApiDocuments().merged,
      );
  }
  return { node, pointer };
}

function pointerOf(...tokens: string[]): string {
  return tokens.map((t) => "/" + escapeToken(t)).join("");
}

/** Escapes one JSON pointer token ("~" and "/"). */
export function escapeToken(token: string): string {
  return token.replace(/~/g, "~0").replace(/\//g, "~1");
}

function unescapeToken(token: string): string {
  return token.replace(/~1/g, "/").replace(/~0/g, "~");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function templateCount(path: string): number {
  return (path.match(/\{/g) ?? []).length;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (!isObject(a) || !isObject(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && deepEqual(a[k], b[k]));
}
