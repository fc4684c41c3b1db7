import type { Role } from "../../contracts/runtime/auth/roles.js";

/**
 * The role each core RPC needs, by service and method (implementation name).
 * Control-plane writes need an admin key, registration a worker key; every
 * other call (tasks, sessions, and reads of pools, catalog and artifacts) a
 * client key. One table, so a new write cannot slip in as a client call
 * without someone writing it here.
 */
const NEEDS: Record<string, Record<string, Role>> = {
  PoolService: { drainPool: "admin", reloadPool: "admin" },
  CatalogService: { createModel: "admin", deleteModel: "admin", verifyModel: "admin", setModelState: "admin" },
  ArtifactService: { createArtifact: "admin" },
  RegistryService: { register: "worker" },
};

export function coreMethodRole(service: string): (method: string) => Role {
  const table = NEEDS[service] ?? {};
  return (method) => table[method] ?? "client";
}
