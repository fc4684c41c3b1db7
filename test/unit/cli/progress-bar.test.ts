import test from "ava";
import { progressBar, redrawLine } from "../../../cli/progress-bar.js";

const MIB = 1024 * 1024;

test("a progress bar: phase, subject, bar, percent, amounts and rate; without a total only what is known", (t) => {
  t.is(
    progressBar({ phase: "downloading", subject: "b.gguf", bytes_done: 100 * MIB, bytes_total: 400 * MIB, bytes_per_second: 5 * MIB }, 20),
    "downloading b.gguf [#####...............]  25%  100.0 MiB / 400.0 MiB  5.0 MiB/s",
  );
  t.is(
    progressBar({ phase: "verifying", bytes_done: 400 * MIB, bytes_total: 400 * MIB }, 10),
    "verifying [##########] 100%  400.0 MiB / 400.0 MiB",
  );
  t.is(progressBar({ phase: "loading", subject: "hf:org/m", bytes_done: 0 }), "loading hf:org/m");
  t.is(progressBar({ phase: "downloading", bytes_done: 3 * MIB }), "downloading  3.0 MiB");
});

test("the bar is redrawn in place on a terminal and not written at all elsewhere", (t) => {
  const written: string[] = [];
  const tty = redrawLine({ isTTY: true, write: (s: string) => written.push(s) });
  tty("a");
  tty(undefined);
  t.deepEqual(written, ["\ra\x1b[K", "\r\x1b[K"]);
  const pipe: string[] = [];
  redrawLine({ write: (s: string) => pipe.push(s) })("a");
  t.deepEqual(pipe, []);
});
