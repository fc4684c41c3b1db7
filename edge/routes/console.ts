import { readFileSync } from "node:fs";
import { join } from "node:path";
import type Router from "@koa/router";
import type { RouterContext } from "@koa/router";
import { ErrorCode } from "../../contracts/gen/llama_orch/v1/common.js";
import { projectRoot } from "../../contracts/runtime/project-root.js";
import { HttpError } from "../http-errors.js";

/**
 * The operator console's files, read once at startup from edge/ui/: plain
 * HTML, CSS and JavaScript with no build step and nothing loaded from
 * elsewhere, so it works offline. Only these names are served (no path is
 * ever joined from the request).
 */
const FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "console.js": "text/javascript; charset=utf-8",
  "console.css": "text/css; charset=utf-8",
};

function loadFiles(): Map<string, { type: string; body: Buffer }> {
  const dir = join(projectRoot(), "edge", "ui");
  return new Map(Object.entries(FILES).map(([name, type]) => [name, { type, body: readFileSync(join(dir, name)) }]));
}

/**
 * GET /ui (and /ui/<file>), and / sends a browser there. The files hold no
 * data, so they need no key: the console asks for one and sends it with
 * every API call, which /v1 checks as it checks any client.
 */
export function mountConsoleRoutes(router: Router): void {
  const files = loadFiles();
  const serve = (name: string | undefined) => (ctx: RouterContext) => {
    const file = files.get(name ?? String(ctx.params.file));
    // One route for /ui/:file, so other methods on it are 405 like any path of the contract.
    if (!file) throw HttpError.of(ErrorCode.ERROR_CODE_NOT_FOUND, "no such console file");
    ctx.type = file.type;
    // Same version as the edge: no stale console after an upgrade.
    ctx.set("Cache-Control", "no-cache");
    ctx.body = file.body;
  };
  router.get("/", (ctx) => {
    ctx.redirect("/ui");
    // Koa answers text/plain to a client that does not accept HTML; the contract promises HTML to everyone.
    ctx.type = "text/html; charset=utf-8";
    ctx.body = 'Redirecting to <a href="/ui">/ui</a>.';
  });
  router.get("/ui", serve("index.html"));
  router.get("/ui/:file", serve(undefined));
}
