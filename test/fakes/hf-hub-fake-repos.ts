// What the fake hub (hf-hub-fake.ts) serves: repositories as a test
// describes them, the ids the hub derives from their files (the LFS sha256,
// the git blob id of the file or of its LFS pointer), and the entries of the
// tree API. See hf-hub-fake.ts for the sources followed.
import { createHash } from "node:crypto";

export interface HubFileSpec {
  /** Path inside the repository, e.g. "sub/model.gguf". */
  path: string;
  content: Buffer | string;
  /** Stored in LFS (served from the CDN through a redirect); default true. */
  lfs?: boolean;
}

export interface HubRepoSpec {
  /** "org/repo". */
  id: string;
  files: HubFileSpec[];
  /** Anonymous requests get 401 GatedRepo; the fake's token is let in. */
  gated?: boolean;
  /** The commit every branch points at; default a hash of the id. */
  commit?: string;
  /** Branch or tag names the repository knows besides "main". */
  branches?: string[];
}

export interface StoredFile {
  path: string;
  content: Buffer;
  lfs: boolean;
  sha256: string;
  gitOid: string;
  pointerSize: number;
}

export interface StoredRepo {
  id: string;
  gated: boolean;
  commit: string;
  revisions: Set<string>;
  files: StoredFile[];
}

export function storedFile(spec: HubFileSpec): StoredFile {
  const content = Buffer.isBuffer(spec.content) ? spec.content : Buffer.from(spec.content);
  const lfs = spec.lfs ?? true;
  const sha256 = createHash("sha256").update(content).digest("hex");
  const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${content.length}\n`);
  return { path: spec.path, content, lfs, sha256, gitOid: gitBlobOid(lfs ? pointer : content), pointerSize: pointer.length };
}

/** The git blob id of `content`: what the hub reports as the oid of a file kept in git. */
export function gitBlobOid(content: Buffer): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

export function treeEntries(files: StoredFile[], dir: string, recursive: boolean): object[] {
  const prefix = dir === "" ? "" : `${dir}/`;
  const under = files.filter((f) => f.path.startsWith(prefix));
  const dirs = new Set<string>();
  for (const f of under) {
    const parts = f.path.slice(prefix.length).split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(prefix + parts.slice(0, i).join("/"));
  }
  const depth = (p: string): number => p.slice(prefix.length).split("/").length;
  const folderEntries = [...dirs]
    .filter((d) => recursive || depth(d) === 1)
    .map((d) => ({ type: "directory", oid: createHash("sha1").update(d).digest("hex"), size: 0, path: d }));
  const fileEntries = under
    .filter((f) => recursive || depth(f.path) === 1)
    .map((f) => ({
      type: "file",
      oid: f.gitOid,
      size: f.content.length,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.content.length, pointerSize: f.pointerSize } } : {}),
    }));
  return [...folderEntries, ...fileEntries].sort((a, b) => a.path.localeCompare(b.path));
}
