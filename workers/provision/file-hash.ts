// Hashes of files on disk: the sha256 every model is known by, and the git
// blob id the hub reports for files kept in git rather than LFS.
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";

/** sha256 of the first `length` bytes of `file` (the whole file when undefined), as a hash to continue. */
export async function sha256Prefix(file: string, length?: number, onBytes?: (done: number) => void): Promise<Hash> {
  const hash = createHash("sha256");
  if (length === 0) return hash;
  let done = 0;
  const stream = createReadStream(file, length === undefined ? {} : { start: 0, end: length - 1 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    done += chunk.length;
    onBytes?.(done);
  }
  if (length !== undefined && done !== length) throw new Error(`${file} has ${done} bytes, fewer than ${length}`);
  return hash;
}

export async function sha256OfFile(file: string, onBytes?: (done: number) => void): Promise<string> {
  return (await sha256Prefix(file, undefined, onBytes)).digest("hex");
}

/** git's id of a blob: sha1 of "blob <size>\0" and the content. */
export async function gitBlobOidOfFile(file: string, sizeBytes: number): Promise<string> {
  const hash = createHash("sha1").update(`blob ${sizeBytes}\0`);
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest("hex");
}

/** sha256 over `<sha256>  <path>\n` lines sorted by path (sha256sum's format): one digest for a directory of files. */
export function manifestDigest(files: readonly { path: string; sha256: string }[]): string {
  const lines = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => `${f.sha256}  ${f.path}\n`);
  return createHash("sha256").update(lines.join("")).digest("hex");
}
