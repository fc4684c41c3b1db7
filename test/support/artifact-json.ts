import type { Artifact } from "../../contracts/gen/llama_orch/v1/artifact.js";
import { publicJson } from "../../contracts/public-json.js";
import { artifactFromJson } from "../../core/artifacts/artifact-document.js";
import { ArtifactStore as Store, type ArtifactStoreOptions } from "../../core/artifacts/artifact-store.js";
import type { Json } from "./json.js";

// The artifact store seen through the public JSON, as clients and the files on
// disk see it: tests write artifacts the way the HTTP API does.

export { ARTIFACT_KINDS, ArtifactError, DEFAULT_MAX_ARTIFACT_BYTES } from "../../core/artifacts/artifact-store.js";

/** An artifact (to store, or as stored) in its public JSON form. */
export type ArtifactInput = { [member: string]: Json };

const artifacts = publicJson<Artifact>("llama_orch.v1.Artifact");

export class ArtifactStore {
  private constructor(private readonly store: Store) {}

  static async open(root: string, options: ArtifactStoreOptions = {}): Promise<ArtifactStore> {
    return new ArtifactStore(await Store.open(root, options));
  }

  get maxBytes(): number {
    return this.store.maxBytes;
  }

  async put(input: ArtifactInput): Promise<{ artifact: ArtifactInput; created: boolean }> {
    const { artifact, created } = await this.store.put(artifactFromJson(input));
    return { artifact: artifacts.encode(artifact), created };
  }

  async get(id: string): Promise<ArtifactInput | undefined> {
    const artifact = await this.store.get(id);
    return artifact && artifacts.encode(artifact);
  }
}
