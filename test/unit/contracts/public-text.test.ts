import test from "ava";
import { publicText } from "../../../contracts/runtime/public-text.js";

test("socket errors become words, and what they named goes with them", (t) => {
  t.is(publicText("GET /health: connect ECONNREFUSED 127.0.0.1:8081"), "GET /health: connection refused");
  t.is(publicText("POST /completion: getaddrinfo ENOTFOUND gpu-node-3.internal"), "POST /completion: host not found");
  t.is(publicText("read ECONNRESET"), "connection reset");
  t.is(
    publicText("No connection established. Last error: connect ECONNREFUSED [::1]:50051"),
    "No connection established. Last error: connection refused",
  );
});

test("addresses are masked wherever they are", (t) => {
  t.is(
    publicText("upstream 10.1.2.3:8000 and [fe80::1]:9000 and localhost:7000 failed"),
    "upstream [address] and [address] and [address] failed",
  );
  t.is(publicText("served by 192.168.0.7"), "served by [address]");
});

test("stack traces end the text, JavaScript's and Python's", (t) => {
  t.is(publicText("boom\n    at Engine.generate (/srv/x.js:12:34)\n    at process.tick (node:internal/x:1:2)"), "boom");
  t.is(
    publicText('POST /generate: HTTP 500: Traceback (most recent call last):\n  File "server.py", line 3, in run\nValueError: x'),
    "POST /generate: HTTP 500",
  );
  t.is(publicText('ok\n  File "a.py", line 9'), "ok");
});

test("ordinary messages pass unchanged", (t) => {
  for (const m of [
    "POST /completion: HTTP 400: the request exceeds the available context size",
    "model mock:tiny v1.2 loaded",
    "all 4 slots are busy",
  ]) {
    t.is(publicText(m), m);
  }
});
