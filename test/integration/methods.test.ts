import test from "ava";
import { request } from "node:http";
import { loadApiDocuments } from "../../contracts/openapi.js";
import { checkResponse } from "../support/openapi-check.js";
import { api } from "../support/http.js";
import { TestSystem } from "../support/system.js";

let sys: TestSystem;
test.before(async () => {
  sys = await TestSystem.start({ workers: [{ replica: "r1" }] });
});
test.after.always(async () => sys?.stop());

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/** Every path of the contract with its template parameters filled in, and the methods it declares. */
function contractPaths(): { path: string; declared: string[] }[] {
  return Object.entries(loadApiDocuments().merged.paths).map(([template, item]) => ({
    path: template.replace(/\{[^}]+\}/g, crypto.randomUUID()),
    declared: METHODS.filter((m) => m.toLowerCase() in item),
  }));
}

test("every path of the contract answers a method it does not declare with 405, Allow and the METHOD_NOT_ALLOWED envelope", async (t) => {
  let checked = 0;
  for (const { path, declared } of contractPaths()) {
    for (const method of METHODS.filter((m) => !declared.includes(m))) {
      // api() checks the answer against the contract: status 405, Allow exactly the declared methods, the envelope.
      const res = await api(t, sys.edgeUrl, method, path, method === "GET" ? {} : { body: {} });
      t.is(res.status, 405, `${method} ${path}`);
      t.is(res.json.code, "METHOD_NOT_ALLOWED");
      checked++;
    }
  }
  t.true(checked > 20, `only ${checked} wrong methods tried`);
});

test("a method the router does not know (PROPFIND) is the same 405; on an unknown path it is 404", async (t) => {
  const send = (path: string) =>
    new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
      const req = request(`${sys.edgeUrl}${path}`, { method: "PROPFIND" }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers as Record<string, string>, body }));
      });
      req.on("error", reject);
      req.end();
    });
  const path = `/v1/tasks/${crypto.randomUUID()}/cancel`;
  const known = await send(path);
  t.deepEqual(checkResponse("PROPFIND", path, known), []);
  t.is(known.status, 405);
  const unknown = await send("/v1/nowhere");
  t.is(unknown.status, 404);
  t.is(JSON.parse(unknown.body).code, "NOT_FOUND");
});
