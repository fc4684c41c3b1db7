// A fake Hugging Face Hub (node:http, or node:https with the loopback
// certificate) that speaks the hub's download and file-listing protocol
// closely enough to test the model provisioner, plus a second server, on
// its own port (so its own host), standing in for the CDN that serves LFS
// files.
//
// Sources:
// - huggingface_hub `file_download.py` (`hf_hub_url`, `get_hf_file_metadata`,
//   `hf_hub_download`): files are at `{endpoint}/{repo_id}/resolve/{revision}/{filename}`;
//   an LFS file answers a redirect to a CDN URL with `X-Linked-Etag` (the LFS
//   sha256, quoted as an ETag), `X-Linked-Size` and `X-Repo-Commit`; a file
//   kept in git answers 200 with `ETag` (its git blob sha1) and `X-Repo-Commit`;
//   the client drops the Authorization header before it follows a redirect to
//   another host ("Remove authorization header when downloading a LFS blob").
//   Resumed downloads send `Range: bytes=N-`.
// - huggingface_hub `utils/_http.py` (`hf_raise_for_status`): errors carry
//   `X-Error-Code` (`RepoNotFound`, `GatedRepo`, `EntryNotFound`,
//   `RevisionNotFound`) and `X-Error-Message`; a missing or private repo and a
//   gated one answer 401 to an anonymous client, "Invalid credentials in
//   Authorization header" is the 401 of a wrong token.
// - huggingface_hub `hf_api.py`: `model_info` is
//   `GET /api/models/{repo_id}/revision/{revision}` (`sha` is the commit;
//   `siblings` are `{rfilename}`, with `?blobs=true` also `size`, `blobId` and
//   `lfs: {sha256, size, pointerSize}`); `list_repo_tree` is
//   `GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=true` and
//   returns `{type: "file", oid, size, path, lfs?: {oid, size, pointerSize}}`
//   and `{type: "directory", oid, size: 0, path}` entries (`RepoFile`,
//   `RepoFolder`), paginated by a `Link: <…>; rel="next"` header
//   (`utils/_pagination.py`).
// - The git-lfs pointer format (git-lfs `docs/spec.md`): "version
//   https://git-lfs.github.com/spec/v1\noid sha256:<hex>\nsize <n>\n"; a git
//   blob id is sha1("blob <size>\0" + content).
// - RFC 9110 §14 (Range, If-Range, 206 with Content-Range, 416 with
//   `Content-Range: bytes */<size>`): the CDN serves ranges, and a full 200
//   when If-Range names another entity tag.
//
// What the fake does NOT model: Xet storage, datasets and spaces, HEAD-only
// metadata calls other than answering HEAD like GET without a body, rate
// limits, a token that is valid but has not accepted a gated repo's terms
// (403 GatedRepo).
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { storedFile, treeEntries, type HubRepoSpec, type StoredFile, type StoredRepo } from "./hf-hub-fake-repos.js";
import { LOOPBACK_TLS_CERT, LOOPBACK_TLS_KEY } from "./loopback-tls.js";

export { gitBlobOid, type HubFileSpec, type HubRepoSpec } from "./hf-hub-fake-repos.js";

/** One request as a fake server saw it. */
export interface HubFakeRequest {
  server: "hub" | "cdn";
  method: string;
  /** Without the query. */
  path: string;
  query: string;
  headers: http.IncomingHttpHeaders;
}

/** Switches a test flips while the fake runs. */
export interface HubFakeFaults {
  /** Cut the connection after writing this many body bytes of a file (0: never). */
  cutAfterBytes: number;
  /** How many file responses to cut; Infinity cuts every one. */
  cuts: number;
  /** Serve the right number of bytes, one of them wrong. */
  wrongBytes: boolean;
  /** Write file bodies in pieces of this size, pausing chunkDelayMs between them. */
  chunkBytes: number;
  chunkDelayMs: number;
  /** Answer every Range request with the whole file (200), as a server without range support does. */
  ignoreRange: boolean;
  /** Put the Authorization header it got into a 401's message, as a careless mirror might: for redaction tests. */
  echoCredentials: boolean;
}

const SIGNING_KEY = "hf-hub-fake-cdn";

export class HfHubFake {
  readonly requests: HubFakeRequest[] = [];
  faults: HubFakeFaults = {
    cutAfterBytes: 0,
    cuts: 0,
    wrongBytes: false,
    chunkBytes: 0,
    chunkDelayMs: 0,
    ignoreRange: false,
    echoCredentials: false,
  };
  /** Entries per page of the tree API (0: one page). */
  treePageSize = 0;
  private readonly repos = new Map<string, StoredRepo>();
  private hubBase = "";
  private cdnBase = "";

  private readonly hub: http.Server;
  private readonly cdn: http.Server;

  private constructor(
    readonly token: string,
    private readonly tls: boolean,
  ) {
    const make = (handler: http.RequestListener): http.Server =>
      tls ? https.createServer({ key: LOOPBACK_TLS_KEY, cert: LOOPBACK_TLS_CERT }, handler) : http.createServer(handler);
    this.hub = make((req, res) => void this.onHub(req, res));
    this.cdn = make((req, res) => void this.onCdn(req, res));
  }

  /** Starts the hub and the CDN on free loopback ports; `tls` serves both over https with the loopback certificate. */
  static async start(repos: HubRepoSpec[], options: { token?: string; tls?: boolean } = {}): Promise<HfHubFake> {
    const fake = new HfHubFake(options.token ?? "hf_fake_token_0123456789", options.tls ?? false);
    for (const spec of repos) fake.addRepo(spec);
    const scheme = fake.tls ? "https" : "http";
    fake.hubBase = `${scheme}://127.0.0.1:${await listenOn(fake.hub)}`;
    fake.cdnBase = `${scheme}://127.0.0.1:${await listenOn(fake.cdn)}`;
    return fake;
  }

  /** The value for HF_ENDPOINT. */
  get url(): string {
    return this.hubBase;
  }

  get cdnUrl(): string {
    return this.cdnBase;
  }

  addRepo(spec: HubRepoSpec): void {
    const commit = spec.commit ?? createHash("sha1").update(spec.id).digest("hex");
    const files = spec.files.map((f) => storedFile(f));
    this.repos.set(spec.id, {
      id: spec.id,
      gated: spec.gated ?? false,
      commit,
      revisions: new Set(["main", commit, ...(spec.branches ?? [])]),
      files,
    });
  }

  /** The sha256 the hub reports for a file (its LFS oid). */
  sha256Of(repoId: string, path: string): string {
    return this.fileOf(repoId, path).sha256;
  }

  /** The signed CDN URL of an LFS file, as the hub's redirect names it. */
  cdnUrlOf(repoId: string, path: string): string {
    const sha = this.fileOf(repoId, path).sha256;
    return `${this.cdnBase}/repos/${sha.slice(0, 2)}/${sha.slice(2, 4)}/${sha}?X-Amz-Expires=3600&X-Amz-Signature=${signatureOf(sha)}`;
  }

  commitOf(repoId: string): string {
    return this.repos.get(repoId)!.commit;
  }

  /** GETs of file bytes (the CDN's, and the hub's for files kept in git). */
  fileGets(): HubFakeRequest[] {
    return this.requests.filter((r) => r.method === "GET" && (r.server === "cdn" || r.path.includes("/resolve/")));
  }

  cdnGets(): HubFakeRequest[] {
    return this.requests.filter((r) => r.server === "cdn" && r.method === "GET");
  }

  async close(): Promise<void> {
    await Promise.all([closeNow(this.hub), closeNow(this.cdn)]);
  }

  private fileOf(repoId: string, path: string): StoredFile {
    return this.repos.get(repoId)!.files.find((f) => f.path === path)!;
  }

  private record(server: "hub" | "cdn", req: http.IncomingMessage): URL {
    const url = new URL(req.url ?? "/", "http://fake");
    this.requests.push({ server, method: req.method ?? "GET", path: url.pathname, query: url.search, headers: req.headers });
    return url;
  }

  private async onHub(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = this.record("hub", req);
    const segments = url.pathname.split("/").slice(1).map(decodeURIComponent);
    if (segments[0] === "api" && segments[1] === "models") return this.onApi(req, res, url, segments.slice(2));
    const [org, name, verb, revision, ...fileParts] = segments;
    if (verb !== "resolve" || revision === undefined || fileParts.length === 0) return hubError(res, 404, undefined, "Not Found");
    const repo = this.authorize(req, res, `${org}/${name}`);
    if (repo === undefined) return;
    if (!repo.revisions.has(revision)) return hubError(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    const file = repo.files.find((f) => f.path === fileParts.join("/"));
    if (file === undefined) return hubError(res, 404, "EntryNotFound", "Entry not found", { "x-repo-commit": repo.commit });
    if (!file.lfs) return this.serveBytes(req, res, file.content, `"${file.gitOid}"`, { "x-repo-commit": repo.commit });
    const location = this.cdnUrlOf(repo.id, file.path);
    res.writeHead(302, {
      location,
      "x-repo-commit": repo.commit,
      "x-linked-etag": `"${file.sha256}"`,
      "x-linked-size": String(file.content.length),
      etag: `"${file.gitOid}"`,
      "content-type": "text/plain; charset=utf-8",
    });
    res.end(`Found. Redirecting to ${location}`);
  }

  /** The repository, or undefined after answering the hub's 401/404 for it. */
  private authorize(req: http.IncomingMessage, res: http.ServerResponse, repoId: string): StoredRepo | undefined {
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== `Bearer ${this.token}`) {
      hubError(res, 401, undefined, `Invalid credentials in Authorization header${this.faults.echoCredentials ? ` (got ${auth})` : ""}`);
      return undefined;
    }
    const repo = this.repos.get(repoId);
    if (repo === undefined) {
      // Anonymous clients cannot tell a missing repository from a private one.
      hubError(res, auth === undefined ? 401 : 404, "RepoNotFound", "Repository not found");
      return undefined;
    }
    if (repo.gated && auth === undefined) {
      const why = `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`;
      hubError(res, 401, "GatedRepo", why);
      return undefined;
    }
    return repo;
  }

  private onApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL, rest: string[]): void {
    const [org, name, verb, revision = "main", ...pathParts] = rest;
    const repo = this.authorize(req, res, `${org}/${name}`);
    if (repo === undefined) return;
    if (verb !== undefined && verb !== "revision" && verb !== "tree") return hubError(res, 404, undefined, "Not Found");
    if (!repo.revisions.has(revision)) return hubError(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    if (verb === "tree") return this.sendTree(res, url, repo, pathParts.join("/"));
    const blobs = url.searchParams.get("blobs") === "true";
    const siblings = repo.files.map((f) =>
      blobs
        ? {
            rfilename: f.path,
            size: f.content.length,
            blobId: f.gitOid,
            ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.content.length, pointerSize: f.pointerSize } } : {}),
          }
        : { rfilename: f.path },
    );
    sendJson(res, 200, {
      _id: repo.commit.slice(0, 24),
      id: repo.id,
      modelId: repo.id,
      sha: repo.commit,
      private: false,
      gated: repo.gated ? "manual" : false,
      disabled: false,
      siblings,
    });
  }

  private sendTree(res: http.ServerResponse, url: URL, repo: StoredRepo, dir: string): void {
    const recursive = url.searchParams.get("recursive") === "true";
    const entries = treeEntries(repo.files, dir, recursive);
    const start = Number(url.searchParams.get("cursor") ?? "0");
    const size = this.treePageSize > 0 ? this.treePageSize : entries.length;
    const page = entries.slice(start, start + size);
    const headers: Record<string, string> = {};
    if (start + size < entries.length) {
      const next = new URL(`${this.hubBase}${url.pathname}`);
      if (recursive) next.searchParams.set("recursive", "true");
      next.searchParams.set("cursor", String(start + size));
      headers.link = `<${next.href}>; rel="next"`;
    }
    res.writeHead(200, { "content-type": "application/json", ...headers }).end(JSON.stringify(page));
  }

  private async onCdn(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = this.record("cdn", req);
    const sha = /^\/repos\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const file = sha === undefined ? undefined : [...this.repos.values()].flatMap((r) => r.files).find((f) => f.sha256 === sha);
    if (file === undefined || url.searchParams.get("X-Amz-Signature") !== signatureOf(file.sha256)) {
      res
        .writeHead(403, { "content-type": "application/xml" })
        .end("<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>");
      return;
    }
    const etag = `"${createHash("md5").update(file.content).digest("hex")}"`;
    await this.serveBytes(req, res, file.content, etag, { "last-modified": "Tue, 01 Jul 2025 00:00:00 GMT" });
  }

  /** A file's bytes, honouring Range and If-Range, with the configured faults. */
  private async serveBytes(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    content: Buffer,
    etag: string,
    extra: Record<string, string>,
  ): Promise<void> {
    const body = this.faults.wrongBytes ? corrupted(content) : content;
    const range = this.rangeOf(req, etag, body.length);
    if (range === "unsatisfiable") {
      res.writeHead(416, { "content-range": `bytes */${body.length}`, etag, ...extra }).end();
      return;
    }
    const [start, end] = range ?? [0, body.length - 1];
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "content-length": String(end - start + 1),
      "accept-ranges": "bytes",
      etag,
      ...extra,
    };
    if (range !== undefined) headers["content-range"] = `bytes ${start}-${end}/${body.length}`;
    res.writeHead(range === undefined ? 200 : 206, headers);
    if (req.method === "HEAD") return void res.end();
    await this.writeBody(res, body.subarray(start, end + 1));
  }

  private rangeOf(req: http.IncomingMessage, etag: string, size: number): [number, number] | "unsatisfiable" | undefined {
    const header = req.headers.range;
    if (header === undefined || this.faults.ignoreRange) return undefined;
    const ifRange = req.headers["if-range"];
    if (ifRange !== undefined && ifRange !== etag) return undefined;
    const m = /^bytes=(\d+)-(\d*)$/.exec(header);
    if (m === null) return undefined;
    const start = Number(m[1]);
    const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    return start >= size || start > end ? "unsatisfiable" : [start, end];
  }

  private async writeBody(res: http.ServerResponse, body: Buffer): Promise<void> {
    const cutAt =
      this.faults.cutAfterBytes > 0 && this.faults.cuts > 0 && this.faults.cutAfterBytes < body.length
        ? this.faults.cutAfterBytes
        : undefined;
    if (cutAt !== undefined) this.faults.cuts--;
    const step = this.faults.chunkBytes > 0 ? this.faults.chunkBytes : body.length;
    let sent = 0;
    while (sent < body.length) {
      if (res.destroyed) return;
      const limit = cutAt !== undefined ? Math.min(cutAt, sent + step) : sent + step;
      const piece = body.subarray(sent, limit);
      sent += piece.length;
      if (piece.length > 0 && !res.write(piece)) await new Promise((resolve) => res.once("drain", resolve));
      if (cutAt !== undefined && sent >= cutAt) {
        // Let the bytes reach the client before the cut, as a dropped connection mid-file does.
        await new Promise<void>((resolve) => res.write(Buffer.alloc(0), () => resolve()));
        await sleep(20);
        res.socket?.destroy();
        return;
      }
      if (this.faults.chunkDelayMs > 0 && sent < body.length) await sleep(this.faults.chunkDelayMs);
    }
    res.end();
  }
}

function hubError(
  res: http.ServerResponse,
  status: number,
  code: string | undefined,
  message: string,
  extra: Record<string, string> = {},
): void {
  const headers: Record<string, string> = { "content-type": "application/json", "x-error-message": message, ...extra };
  if (code !== undefined) headers["x-error-code"] = code;
  res.writeHead(status, headers).end(JSON.stringify({ error: message }));
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

function signatureOf(sha256: string): string {
  return createHmac("sha256", SIGNING_KEY).update(sha256).digest("hex").slice(0, 32);
}

function corrupted(content: Buffer): Buffer {
  const copy = Buffer.from(content);
  if (copy.length > 0) copy[copy.length >> 1] = copy[copy.length >> 1]! ^ 0xff;
  return copy;
}

async function listenOn(server: http.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

function closeNow(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
