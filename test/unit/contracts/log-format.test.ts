import test from "ava";
import { Writable } from "node:stream";
import { pino } from "pino";
import { createLogger } from "../../../contracts/runtime/logger.js";
import { LOG_FORMAT_ENV, prettyDestination, prettyLine, resolveLogFormat } from "../../../contracts/runtime/log-format.js";

test("the sentence of a log line is pino's msg, so pino-pretty and log tools find it", (t) => {
  const lines: string[] = [];
  const log = createLogger("core", {}, { write: (s: string) => void lines.push(s) });
  log.info({ event: "admitted" }, "task t admitted");
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.is(entry["msg"], "task t admitted");
  t.false("human" in entry);
  t.is(entry["component"], "core");
});

test("the format: the flag, else LLORCH_LOG_FORMAT, else pretty on a terminal and JSON on anything else", (t) => {
  t.is(resolveLogFormat("json", { [LOG_FORMAT_ENV]: "pretty" }, { isTTY: true }), "json");
  t.is(resolveLogFormat(undefined, { [LOG_FORMAT_ENV]: "pretty" }, { isTTY: false }), "pretty");
  t.is(resolveLogFormat(undefined, {}, { isTTY: true }), "pretty");
  t.is(resolveLogFormat(undefined, {}, { isTTY: false }), "json");
  t.is(resolveLogFormat(undefined, {}, {}), "json");
  t.throws(() => resolveLogFormat(undefined, { [LOG_FORMAT_ENV]: "yaml" }, {}), {
    message: /LLORCH_LOG_FORMAT must be one of pretty, json/,
  });
});

test("a pretty line is time, level, who and the sentence; an error's stack follows; a non-JSON line passes through", (t) => {
  const line = JSON.stringify({
    level: 40,
    time: "2026-01-02T12:34:56.789Z",
    component: "worker",
    replica_id: "default-r1",
    msg: "registration lost",
    err: { stack: "Error: gone\n    at x" },
  });
  t.is(prettyLine(line), "12:34:56.789 WARN  worker default-r1  registration lost\nError: gone\n    at x\n");
  t.is(prettyLine("not json"), "not json\n");
  t.true(prettyLine(line, true).includes("\x1b[33mWARN \x1b[0m"), "the level in colour on a terminal");
});

test("a pino logger on the pretty destination writes readable lines, no JSON", (t) => {
  let out = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const log = pino({ base: { component: "edge" }, timestamp: pino.stdTimeFunctions.isoTime }, prettyDestination(sink));
  log.info({ url: "http://127.0.0.1:1" }, "edge listening");
  t.regex(out, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}edge {2}edge listening\n$/);
});
