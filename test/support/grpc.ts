import { credentials, Metadata, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { RegistryServiceClient, type ReplicaStatus } from "../../contracts/gen/llama_orch/v1/registry.js";

export function listReplicas(coreAddress: string, apiKey?: string, creds?: ChannelCredentials): Promise<ReplicaStatus[]> {
  const client = new RegistryServiceClient(coreAddress, creds ?? credentials.createInsecure());
  const md = new Metadata();
  if (apiKey) md.set("authorization", `Bearer ${apiKey}`);
  return new Promise<ReplicaStatus[]>((resolve, reject) =>
    client.listReplicas({}, md, { deadline: Date.now() + 2_000 }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res.replicas);
    }),
  );
}

/** `authorization: Bearer <key>` metadata, as every client of ours sends it. */
export function keyMetadata(key?: string): Metadata {
  const md = new Metadata();
  if (key) md.set("authorization", `Bearer ${key}`);
  return md;
}

/** The error a unary gRPC call ends with (null when it succeeds). */
export function unaryError(
  call: (md: Metadata, cb: (err: ServiceError | null) => void) => void,
  key?: string,
): Promise<ServiceError | null> {
  return new Promise((resolve) => call(keyMetadata(key), (err) => resolve(err)));
}
