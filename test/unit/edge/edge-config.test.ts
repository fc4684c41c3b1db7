import test from "ava";
import { flagNames } from "../../../contracts/runtime/flag-table.js";
import { DEFAULT_EDGE_CONFIG, EDGE_FLAGS, edgeConfigFromFlags, edgeHelp } from "../../../edge/edge-config.js";
import { assertCorsOrigins } from "../../../edge/middleware/cors.js";

test("every flag maps onto the config", (t) => {
  t.like(
    edgeConfigFromFlags({
      host: "::",
      port: "0",
      core: "core:1",
      "body-limit-bytes": "5",
      "sse-heartbeat-ms": "0",
      "rate-limit-per-second": "4",
      "rate-limit-burst": "2",
      "auth-optional": true,
      "keys-file": "/k.yaml",
      "trust-proxy": true,
      "tls-cert": "/e.pem",
      "tls-key": "/e.key",
      "core-tls-ca": "/ca.pem",
      "core-tls-cert": "/c.pem",
      "core-tls-key": "/c.key",
      "log-format": "json",
    }),
    {
      host: "::",
      port: 0,
      coreAddress: "core:1",
      bodyLimitBytes: 5,
      sseHeartbeatMs: 0,
      rateLimit: { perSecond: 4, burst: 2 },
      authOptionalOnLoopback: true,
      keysFile: "/k.yaml",
      trustProxy: true,
      tls: { cert: "/e.pem", key: "/e.key" },
      coreTls: { ca: "/ca.pem", cert: "/c.pem", key: "/c.key" },
      logFormat: "json",
    },
  );
  t.is(flagNames(EDGE_FLAGS).length, 25);
  t.like(edgeConfigFromFlags({}), { ...DEFAULT_EDGE_CONFIG, rateLimit: { perSecond: 0, burst: 1 } });
});

test("without --rate-limit-burst a caller may spend one second's worth at once, at least one request", (t) => {
  t.deepEqual(edgeConfigFromFlags({ "rate-limit-per-second": "2.5" }).rateLimit, { perSecond: 2.5, burst: 3 });
  t.deepEqual(edgeConfigFromFlags({ "rate-limit-per-second": "0.2" }).rateLimit, { perSecond: 0.2, burst: 1 });
  t.is(DEFAULT_EDGE_CONFIG.rateLimit.burst, 1, "the shared defaults stay as they are");
});

test("bad values are refused with a message naming the flag", (t) => {
  t.throws(() => edgeConfigFromFlags({ "rate-limit-burst": "0" }), { message: /--rate-limit-burst must be an integer of at least 1/ });
  t.throws(() => edgeConfigFromFlags({ port: "65536" }), { message: /--port must be an integer from 0 to 65535/ });
});

test("the help text lists every flag", (t) => {
  for (const name of flagNames(EDGE_FLAGS)) t.true(edgeHelp.includes(`--${name} `), name);
  t.regex(edgeHelp, /^ {2}--rate-limit-per-second X {2}\/v1 requests/m);
});

test("--cors-origin is a list of origins spelled as browsers send them; anything else is refused naming the flag", (t) => {
  t.deepEqual(edgeConfigFromFlags({ "cors-origin": "https://App.Example.com/, http://127.0.0.1:3000,http://localhost:80" }).corsOrigins, [
    "https://app.example.com",
    "http://127.0.0.1:3000",
    "http://localhost",
  ]);
  t.deepEqual(edgeConfigFromFlags({ "cors-origin": "*" }).corsOrigins, ["*"]);
  t.deepEqual(edgeConfigFromFlags({}).corsOrigins, [], "no CORS unless asked for");
  t.throws(() => edgeConfigFromFlags({ "cors-origin": "https://app.example.com/path" }), { message: /--cors-origin: .* is not an origin/ });
  t.throws(() => edgeConfigFromFlags({ "cors-origin": "app.example.com" }), { message: /--cors-origin: .* is not an origin/ });
  t.throws(() => edgeConfigFromFlags({ "cors-origin": "ftp://files.example.com" }), { message: /--cors-origin: .* is not an origin/ });
  t.throws(() => edgeConfigFromFlags({ "cors-origin": "" }), { message: /--cors-origin needs a value/ });
});

test('--cors-origin "*" stands alone and never with an API key', (t) => {
  t.throws(() => assertCorsOrigins(["*", "https://a.example"], false), { message: /give it alone/ });
  t.throws(() => assertCorsOrigins(["*"], true), { message: /refusing to start the edge with --cors-origin "\*" and an API key/ });
  t.notThrows(() => assertCorsOrigins(["*"], false));
  t.notThrows(() => assertCorsOrigins(["https://a.example"], true));
});

test("server timeouts and the JSON depth limit are flags with bounded defaults; headers may not outlast the request", (t) => {
  t.like(edgeConfigFromFlags({}), { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000, jsonMaxDepth: 64 });
  t.like(
    edgeConfigFromFlags({ "headers-timeout-ms": "500", "request-timeout-ms": "0", "keep-alive-timeout-ms": "1000", "json-max-depth": "8" }),
    { headersTimeoutMs: 500, requestTimeoutMs: 0, keepAliveTimeoutMs: 1_000, jsonMaxDepth: 8 },
  );
  t.throws(() => edgeConfigFromFlags({ "headers-timeout-ms": "5000", "request-timeout-ms": "1000" }), {
    message: /--headers-timeout-ms \(5000\) must not exceed --request-timeout-ms \(1000\)/,
  });
  t.throws(() => edgeConfigFromFlags({ "json-max-depth": "0" }), { message: /--json-max-depth/ });
});
