import { credentials, Metadata } from "@grpc/grpc-js";
import { RegistryServiceClient, type ReplicaStatus } from "../../contracts/gen/llama_orch/v1/registry.js";

export function listReplicas(coreAddress: string, apiKey?: string): Promise<ReplicaStatus[]> {
  const client = new RegistryServiceClient(coreAddress, credentials.createInsecure());
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
