import test from "ava";
import { redactHeaders, redactText, secretsOfHeaders } from "../../../../workers/http/redact.js";

test("redactHeaders hides credentials in any case and keeps the rest", (t) => {
  t.deepEqual(
    redactHeaders({
      Authorization: "Bearer sk-1",
      "proxy-authorization": "Basic eA==",
      cookie: "a=b",
      "set-cookie": ["s=1", "t=2"],
      "X-API-KEY": "k",
      "api-key": "azure",
      "content-type": "application/json",
      "content-length": 12,
      accept: ["a", "b"],
      missing: undefined,
    }),
    {
      Authorization: "[redacted]",
      "proxy-authorization": "[redacted]",
      cookie: "[redacted]",
      "set-cookie": "[redacted]",
      "X-API-KEY": "[redacted]",
      "api-key": "[redacted]",
      "content-type": "application/json",
      "content-length": "12",
      accept: "a, b",
    },
  );
});

test("redactText replaces every occurrence of each secret and any bearer token", (t) => {
  t.is(redactText("key sk-abc, again sk-abc; Bearer xyz.123", ["sk-abc"]), "key [redacted], again [redacted]; [redacted]");
  t.is(redactText('{"auth":"bearer tok-9"}', []), '{"auth":"[redacted]"}');
  t.is(redactText("sk-abcdef", ["sk-abc", "sk-abcdef"]), "[redacted]", "the longer secret wins");
  t.is(redactText("nothing here", ["", "zzz"]), "nothing here");
});

test("secretsOfHeaders takes sensitive values and their bare credentials", (t) => {
  t.deepEqual(secretsOfHeaders({ Authorization: "Bearer sk-1", "x-api-key": "k2", accept: "x", Cookie: "a=b; c=d" }), [
    "Bearer sk-1",
    "sk-1",
    "k2",
    "a=b; c=d",
  ]);
  t.deepEqual(secretsOfHeaders(undefined), []);
});
