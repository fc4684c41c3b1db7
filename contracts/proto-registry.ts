import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  createFileRegistry,
  fromBinary,
  getOption,
  hasOption,
  type DescEnum,
  type DescExtension,
  type DescMessage,
  type FileRegistry,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { projectRoot } from "./runtime/project-root.js";

let registry: FileRegistry | undefined;

/**
 * Every message, enum and custom option of proto/, read from the descriptor set
 * `npm run gen` writes (contracts/gen/descriptors.binpb), so what code learns
 * about a message's shape comes from the .proto files themselves.
 */
export function protoRegistry(): FileRegistry {
  registry ??= createFileRegistry(
    fromBinary(FileDescriptorSetSchema, readFileSync(join(projectRoot(), "contracts", "gen", "descriptors.binpb"))),
  );
  return registry;
}

export function messageDescriptor(typeName: string): DescMessage {
  const desc = protoRegistry().getMessage(typeName);
  if (!desc) throw new Error(`no message ${typeName} in proto/ (run npm run gen after editing a .proto)`);
  return desc;
}

export function enumDescriptor(typeName: string): DescEnum {
  const desc = protoRegistry().getEnum(typeName);
  if (!desc) throw new Error(`no enum ${typeName} in proto/ (run npm run gen after editing a .proto)`);
  return desc;
}

type Optionable = Parameters<typeof hasOption>[0];

/** The value of one of proto/llama_orch/v1/options.proto's options on a descriptor, or undefined when unset. */
export function customOption(element: Optionable, name: "public_name" | "public_upper_case" | "omit_empty"): unknown {
  const ext: DescExtension | undefined = protoRegistry().getExtension(`llama_orch.v1.${name}`);
  if (!ext) throw new Error(`option llama_orch.v1.${name} is not declared in proto/llama_orch/v1/options.proto`);
  return hasOption(element, ext) ? getOption(element, ext) : undefined;
}
