import test from "ava";
import { apiVersion, loadApiDocuments, validateAgainst } from "../../contracts/openapi.js";
import { checkResponse } from "../support/openapi-check.js";
import { deref, isObject, operationsOf, walk, type Json } from "./openapi-walk.js";

test("every document parses as OpenAPI 3.0 with one shared version", (t) => {
  const { data, control, compat, merged } = loadApiDocuments();
  for (const doc of [data, control, compat, merged]) t.regex(doc.openapi, /^3\.0\.\d+$/);
  t.is(data.info.version, "1.0.0");
  t.is(control.info.version, data.info.version);
  t.is(compat.info.version, data.info.version);
  t.is(apiVersion(), "1.0.0");
  t.is(merged.info.title, "llama-orch API");
  t.is(
    Object.keys(merged.paths).length,
    Object.keys(data.paths).length + Object.keys(control.paths).length + Object.keys(compat.paths).length,
  );
  t.is(loadApiDocuments(), loadApiDocuments(), "documents are cached");
});

test("each document stands alone: all its $refs resolve inside it", (t) => {
  const { data, control, compat } = loadApiDocuments();
  for (const doc of [data, control, compat]) {
    walk(doc, "", (node, pointer) => {
      if (typeof node.$ref === "string") t.truthy(deref(doc, node), `${pointer}: ${node.$ref}`);
    });
  }
});

// The native operations answer errors with the ErrorEnvelope; the compatible APIs' operations
// name their own API's error body in x-error-schema, and their 429s carry what the official SDKs read.
test("every response declares X-Correlation-Id; error responses carry an envelope", (t) => {
  const { merged } = loadApiDocuments();
  for (const { method, path, op } of operationsOf(merged)) {
    const where = `${method.toUpperCase()} ${path}`;
    const responses = op.responses as Json;
    t.truthy(responses["500"], `${where}: 500`);
    if (path.includes("{id}")) t.truthy(responses["404"], `${where}: 404`);
    if (op.requestBody) {
      t.truthy(responses["413"], `${where}: 413`);
      t.truthy(responses["400"], `${where}: 400`);
    }
    const params = ((op.parameters as unknown[]) ?? []).map((p) => deref(merged, p) as Json);
    if (params.some((p) => p.in === "path" && (p.schema as Json).format === "uuid")) t.truthy(responses["400"], `${where}: 400`);
    for (const [status, raw] of Object.entries(responses)) {
      const response = deref(merged, raw) as Json;
      const headers = (response.headers ?? {}) as Json;
      t.truthy(headers["X-Correlation-Id"], `${where} ${status}: X-Correlation-Id`);
      if (Number(status) >= 400) {
        const media = (response.content as Record<string, Json> | undefined)?.["application/json"];
        const native = status === "429" ? "#/components/schemas/BackpressureErrorEnvelope" : "#/components/schemas/ErrorEnvelope";
        const expected = typeof op["x-error-schema"] === "string" ? op["x-error-schema"] : native;
        t.is((media?.schema as Json | undefined)?.$ref, expected, `${where} ${status}: envelope`);
      }
    }
    const tooMany = deref(merged, responses["429"]) as Json | undefined;
    const retryHeaders = op["x-error-schema"] ? ["Retry-After", "retry-after-ms", "x-should-retry"] : ["Retry-After", "X-Backoff-Ms"];
    if (tooMany) for (const h of retryHeaders) t.truthy((tooMany.headers as Json)[h], `${where} 429: ${h}`);
  }
});

test("every operation has a request example and a response example", (t) => {
  const { merged } = loadApiDocuments();
  const hasExample = (node: unknown) => isObject(node) && ("example" in node || "examples" in node);
  for (const { method, path, op } of operationsOf(merged)) {
    const params = ((op.parameters as unknown[]) ?? []).map((p) => deref(merged, p));
    const body = deref(merged, op.requestBody) as Json | undefined;
    const bodyMedia = Object.values((body?.content ?? {}) as Json);
    t.true([...params, ...bodyMedia].some(hasExample), `${method.toUpperCase()} ${path}: request example`);
    const responseMedia = Object.values(op.responses as Json).flatMap((r) =>
      Object.values(((deref(merged, r) as Json).content ?? {}) as Json),
    );
    t.true(responseMedia.some(hasExample), `${method.toUpperCase()} ${path}: response example`);
  }
});

test("every example validates against its schema", (t) => {
  const { merged } = loadApiDocuments();
  let checked = 0;
  const check = (pointer: string, value: unknown, what: string) => {
    checked++;
    t.is(validateAgainst(pointer, value)?.message, undefined, what);
  };
  walk(merged, "", (node, pointer) => {
    // Media types, parameters and headers: examples sit next to `schema`.
    if (isObject(node.schema)) {
      if ("example" in node) check(`${pointer}/schema`, node.example, `${pointer}/example`);
      for (const [name, ex] of Object.entries((node.examples ?? {}) as Record<string, Json>)) {
        check(`${pointer}/schema`, ex.value, `${pointer}/examples/${name}`);
      }
    }
    // Schema objects carry their own example.
    const isSchema = /\/schema$|^\/components\/schemas\/[^/]+$|\/properties\/[^/]+$|\/items$|\/allOf\/\d+$/.test(pointer);
    if (isSchema && "example" in node) check(pointer, node.example, `${pointer}/example`);
  });
  t.true(checked >= 40, `only ${checked} examples found`);
});

test("documented response examples pass checkResponse, SSE examples included", (t) => {
  const { merged } = loadApiDocuments();
  let checked = 0;
  for (const { method, path, op } of operationsOf(merged)) {
    const params = ((op.parameters as unknown[]) ?? []).map((p) => deref(merged, p) as Json);
    const concrete = path.replace(/\{([^}]+)\}/g, (_, name: string) => String(params.find((p) => p.name === name)?.example));
    for (const [status, raw] of Object.entries(op.responses as Json)) {
      const response = deref(merged, raw) as Json;
      const headers: Record<string, string> = {};
      for (const [name, h] of Object.entries((response.headers ?? {}) as Json)) {
        const header = deref(merged, h) as Json;
        if (header.required) headers[name] = String((header.example as string | number | undefined) ?? "1");
      }
      for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, Json>)) {
        for (const ex of Object.values((media.examples ?? {}) as Record<string, Json>)) {
          const body = typeof ex.value === "string" ? ex.value : JSON.stringify(ex.value);
          t.deepEqual(checkResponse(method, concrete, { status: Number(status), headers: { ...headers, "Content-Type": type }, body }), []);
          checked++;
        }
      }
    }
  }
  t.true(checked > 20);
});

test("the capabilities example advertises the contract version", (t) => {
  const op = loadApiDocuments().merged.paths["/v1/capabilities"]!.get as Json;
  const media = ((op.responses as Json)["200"] as Json).content as Record<string, Json>;
  for (const ex of Object.values(media["application/json"]!.examples as Record<string, Json>)) {
    t.is((ex.value as Json).api_version, apiVersion());
  }
});
