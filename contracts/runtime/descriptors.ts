import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { projectRoot } from "./project-root.js";

let cached: Buffer[] | undefined;

/**
 * The serialized FileDescriptorProtos of every file in proto/, as `buf build`
 * wrote them to contracts/gen/descriptors.binpb. Reflection serves these bytes
 * rather than descriptors rebuilt by proto-loader, which name map-entry
 * messages wrongly and break grpcurl and `buf curl` on any map<> field.
 */
export function fileDescriptorProtos(): Buffer[] {
  if (cached) return cached;
  const set = readFileSync(join(projectRoot(), "contracts", "gen", "descriptors.binpb"));
  const reader = new BinaryReader(set);
  const files: Buffer[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    // FileDescriptorSet { repeated FileDescriptorProto file = 1; }
    if (field === 1 && wireType === WireType.LengthDelimited) files.push(Buffer.from(reader.bytes()));
    else reader.skip(wireType);
  }
  return (cached = files);
}
