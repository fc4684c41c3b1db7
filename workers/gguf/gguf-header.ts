// A cheap sanity check of a GGUF file's header before llama.cpp sees it.
// node-llama-cpp's reader takes an unknown version as version 3 and then
// trusts the counts that follow, so a file that is not a GGUF model at all
// can keep it busy indefinitely instead of failing; checking the fixed-size
// header first turns that into a clear error.
import { open } from "node:fs/promises";

const HEADER_BYTES = 24;
const SUPPORTED_VERSIONS = [2, 3];
/** The smallest a metadata entry or tensor info can be on disk (a length-prefixed name plus a type tag). */
const MIN_ENTRY_BYTES = 12;

export class GgufHeaderError extends Error {
  override readonly name = "GgufHeaderError";
}

export interface GgufHeader {
  version: number;
  tensorCount: number;
  metadataCount: number;
  fileBytes: number;
}

export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const file = await open(path, "r");
  try {
    const { size } = await file.stat();
    const buf = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await file.read(buf, 0, HEADER_BYTES, 0);
    return checkHeader(buf.subarray(0, bytesRead), size);
  } finally {
    await file.close();
  }
}

export function checkHeader(buf: Buffer, fileBytes: number): GgufHeader {
  if (buf.length < HEADER_BYTES || buf.toString("latin1", 0, 4) !== "GGUF")
    throw new GgufHeaderError("not a GGUF file (no GGUF magic at its start)");
  const version = buf.readUInt32LE(4);
  if (!SUPPORTED_VERSIONS.includes(version))
    throw new GgufHeaderError(`unsupported GGUF version ${version} (supported: ${SUPPORTED_VERSIONS.join(", ")})`);
  const tensorCount = Number(buf.readBigUInt64LE(8));
  const metadataCount = Number(buf.readBigUInt64LE(16));
  const room = Math.floor((fileBytes - HEADER_BYTES) / MIN_ENTRY_BYTES);
  if (tensorCount + metadataCount > room) {
    throw new GgufHeaderError(
      `corrupt GGUF header: ${tensorCount} tensors and ${metadataCount} metadata entries cannot fit in ${fileBytes} bytes`,
    );
  }
  return { version, tensorCount, metadataCount, fileBytes };
}
