import test from "ava";
import { ErrorCode } from "../../../contracts/gen/llama_orch/v1/common.js";
import { OrchError } from "../../../contracts/runtime/metadata.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, pageOf } from "../../../core/services/paging.js";

const letters = (s: string) => [...s];
const key = (x: string) => x;

function walk(items: readonly string[], pageSize: number, listing = "l"): string[][] {
  const pages: string[][] = [];
  let pageToken = "";
  do {
    const page = pageOf(items, key, listing, { pageSize, pageToken });
    pages.push(page.items);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return pages;
}

test("pages follow one another until the last, whose next_page_token is empty", (t) => {
  t.deepEqual(walk(letters("abcde"), 2), [["a", "b"], ["c", "d"], ["e"]]);
  t.deepEqual(walk(letters("abcd"), 2), [
    ["a", "b"],
    ["c", "d"],
  ]);
  t.deepEqual(walk([], 2), [[]]);
});

test("page_size 0 is the default, above the maximum is the maximum, negative is INVALID_PARAMS naming page_size", (t) => {
  const many = Array.from({ length: MAX_PAGE_SIZE + 5 }, (_, i) => String(i).padStart(5, "0"));
  t.is(pageOf(many, key, "l", { pageSize: 0, pageToken: "" }).items.length, DEFAULT_PAGE_SIZE);
  t.is(pageOf(many, key, "l", { pageSize: MAX_PAGE_SIZE + 1, pageToken: "" }).items.length, MAX_PAGE_SIZE);
  const err = t.throws(() => pageOf(many, key, "l", { pageSize: -1, pageToken: "" }));
  t.true(err instanceof OrchError);
  t.like((err as OrchError).detail, { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "page_size" });
});

test("a token names the last item handed out: items that come and go between pages neither repeat nor hide the ones that stayed", (t) => {
  const first = pageOf(letters("bdfh"), key, "l", { pageSize: 2, pageToken: "" });
  t.deepEqual(first.items, ["b", "d"]);
  // "d" went away, "a" and "e" arrived: the walk goes on after "d", so "a" (before it) is not repeated and f, h still come.
  const next = pageOf(letters("abefh"), key, "l", { pageSize: 2, pageToken: first.nextPageToken });
  t.deepEqual(next.items, ["e", "f"]);
  t.deepEqual(pageOf(letters("abefh"), key, "l", { pageSize: 2, pageToken: next.nextPageToken }).items, ["h"]);
});

test("a token from another listing, or one the server never made, is INVALID_PARAMS naming page_token", (t) => {
  const { nextPageToken } = pageOf(letters("abc"), key, "tasks:1", { pageSize: 1, pageToken: "" });
  t.regex(nextPageToken, /^[A-Za-z0-9_-]+$/, "opaque and URL-safe");
  for (const [pageToken, why] of [
    [nextPageToken, /another listing/],
    ["not-a-token", /not one this server handed out/],
    [Buffer.from('{"after":"a"}').toString("base64url"), /not one this server handed out/],
  ] as const) {
    const err = t.throws(() => pageOf(letters("abc"), key, "tasks:2", { pageSize: 1, pageToken }), { message: why });
    t.like((err as OrchError).detail, { code: ErrorCode.ERROR_CODE_INVALID_PARAMS, field: "page_token" });
  }
});
