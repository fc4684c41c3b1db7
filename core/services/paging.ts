import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { OrchError } from "../../contracts/runtime/metadata.js";

/** AIP-158: page_size 0 asks for the default; more than the maximum gets the maximum. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

export interface Page<T> {
  items: T[];
  /** Empty on the last page. */
  nextPageToken: string;
}

/** What a page token holds: which listing it belongs to, and the key of the last item handed out. */
interface Cursor {
  listing: string;
  after: string;
}

/**
 * One page of `items`, which are in ascending order of `keyOf` (keys unique).
 * The token names the last key handed out, not an offset, so a walk through
 * the pages never repeats an item nor skips one that stayed in the list, even
 * when items come and go in between. `listing` names what is listed (and its
 * filter): a token from another listing is refused rather than misread.
 */
export function pageOf<T>(items: readonly T[], keyOf: (item: T) => string, listing: string, request: PageRequest): Page<T> {
  const size = pageSize(request.pageSize);
  const after = request.pageToken === "" ? undefined : decodeToken(request.pageToken, listing).after;
  const start = after === undefined ? 0 : firstAfter(items, keyOf, after);
  const page = items.slice(start, start + size);
  const more = start + size < items.length;
  return { items: page, nextPageToken: more ? encodeToken({ listing, after: keyOf(page.at(-1)!) }) : "" };
}

function pageSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) {
    throw OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `page_size must be 0 (the default, ${DEFAULT_PAGE_SIZE}) or more`, {
      field: "page_size",
    });
  }
  return requested === 0 ? DEFAULT_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
}

/** Index of the first item whose key sorts after `after` (binary search: the items are sorted). */
function firstAfter<T>(items: readonly T[], keyOf: (item: T) => string, after: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keyOf(items[mid]!) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function encodeToken(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.listing, cursor.after]), "utf8").toString("base64url");
}

function decodeToken(token: string, listing: string): Cursor {
  const bad = (why: string) => OrchError.of(ErrorCode.ERROR_CODE_INVALID_PARAMS, `page_token ${why}`, { field: "page_token" });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw bad("is not one this server handed out; pass next_page_token exactly as it came");
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || !parsed.every((p) => typeof p === "string")) {
    throw bad("is not one this server handed out; pass next_page_token exactly as it came");
  }
  const [from, after] = parsed as [string, string];
  if (from !== listing) throw bad("belongs to another listing (or another filter); start again without it");
  return { listing: from, after };
}
