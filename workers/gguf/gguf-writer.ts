// A GGUF v3 encoder: enough of the format to write small f32 models that
// llama.cpp loads (the demo model, test fixtures). The layout follows
// ggml's gguf.h: header, metadata key/values, tensor infos, padding to the
// alignment, then each tensor's data at an aligned offset.

const MAGIC = "GGUF";
const VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the tag written before every metadata value. */
const enum ValueType {
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
}

/** ggml_type of a tensor's elements; only f32 is written. */
const GGML_TYPE_F32 = 0;

export type GgufScalar =
  | { type: "uint32"; value: number }
  | { type: "int32"; value: number }
  | { type: "float32"; value: number }
  | { type: "uint64"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string };

export type GgufArray =
  | { type: "array"; of: "string"; values: readonly string[] }
  | { type: "array"; of: "float32" | "int32" | "uint32"; values: readonly number[] };

export type GgufValue = GgufScalar | GgufArray;

export interface GgufTensor {
  name: string;
  /** ggml order: dims[0] is the innermost (contiguous) dimension. */
  dims: readonly number[];
  data: Float32Array;
}

export interface GgufFile {
  metadata: ReadonlyArray<readonly [key: string, value: GgufValue]>;
  tensors: readonly GgufTensor[];
}

/** Appends little-endian fields to a growing list of chunks. */
class ChunkWriter {
  readonly chunks: Buffer[] = [];
  length = 0;

  bytes(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  private fixed(size: number, write: (b: Buffer) => void): void {
    const b = Buffer.allocUnsafe(size);
    write(b);
    this.bytes(b);
  }

  u32(v: number): void {
    this.fixed(4, (b) => b.writeUInt32LE(v));
  }

  i32(v: number): void {
    this.fixed(4, (b) => b.writeInt32LE(v));
  }

  f32(v: number): void {
    this.fixed(4, (b) => b.writeFloatLE(v));
  }

  u64(v: number): void {
    this.fixed(8, (b) => b.writeBigUInt64LE(BigInt(v)));
  }

  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }

  padTo(alignment: number): void {
    const pad = (alignment - (this.length % alignment)) % alignment;
    if (pad > 0) this.bytes(Buffer.alloc(pad));
  }
}

const ARRAY_ELEMENT_TYPE = {
  string: ValueType.String,
  float32: ValueType.Float32,
  int32: ValueType.Int32,
  uint32: ValueType.Uint32,
} as const;

function writeValue(w: ChunkWriter, v: GgufValue): void {
  switch (v.type) {
    case "uint32":
      return w.u32(v.value);
    case "int32":
      return w.i32(v.value);
    case "float32":
      return w.f32(v.value);
    case "uint64":
      return w.u64(v.value);
    case "bool":
      return w.bytes(Buffer.from([v.value ? 1 : 0]));
    case "string":
      return w.string(v.value);
    case "array":
      w.u32(ARRAY_ELEMENT_TYPE[v.of]);
      w.u64(v.values.length);
      if (v.of === "string") for (const s of v.values) w.string(s);
      else for (const n of v.values) writeValue(w, { type: v.of, value: n });
  }
}

const VALUE_TYPE: Record<GgufValue["type"], ValueType> = {
  uint32: ValueType.Uint32,
  int32: ValueType.Int32,
  float32: ValueType.Float32,
  uint64: ValueType.Uint64,
  bool: ValueType.Bool,
  string: ValueType.String,
  array: ValueType.Array,
};

function alignmentOf(file: GgufFile): number {
  const entry = file.metadata.find(([k]) => k === "general.alignment")?.[1];
  return entry?.type === "uint32" ? entry.value : GGUF_DEFAULT_ALIGNMENT;
}

/** The whole file as a list of buffers (write them in order, or concatenate). */
export function encodeGguf(file: GgufFile): Buffer[] {
  const alignment = alignmentOf(file);
  const w = new ChunkWriter();
  w.bytes(Buffer.from(MAGIC, "latin1"));
  w.u32(VERSION);
  w.u64(file.tensors.length);
  w.u64(file.metadata.length);
  for (const [key, value] of file.metadata) {
    w.string(key);
    w.u32(VALUE_TYPE[value.type]);
    writeValue(w, value);
  }
  let offset = 0;
  for (const t of file.tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1);
    if (elements !== t.data.length)
      throw new Error(`tensor ${t.name}: dims ${t.dims.join("x")} hold ${elements} values, data has ${t.data.length}`);
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offset += alignUp(t.data.byteLength, alignment);
  }
  w.padTo(alignment);
  for (const t of file.tensors) {
    w.bytes(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    w.padTo(alignment);
  }
  return w.chunks;
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
