import * as monitoringV1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import * as coreV1 from "kubernetes-models/v1";
import * as appsV1 from "kubernetes-models/apps/v1";
import * as autoscalingV2 from "kubernetes-models/autoscaling/v2";
import * as networkingV1 from "kubernetes-models/networking.k8s.io/v1";
import type { Json } from "../json.js";

interface ModelClass {
  apiVersion: string;
  kind: string;
  prototype: { validate(): void };
}

/** The API groups the manifests use, by apiVersion; a kind of another group has no schema here until it is added. */
const GROUPS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  "apps/v1": appsV1,
  "autoscaling/v2": autoscalingV2,
  "networking.k8s.io/v1": networkingV1,
  "monitoring.coreos.com/v1": monitoringV1,
};

function modelOf(apiVersion: string, kind: string): ModelClass | undefined {
  const model = GROUPS[apiVersion]?.[kind] as ModelClass | undefined;
  return model?.apiVersion === apiVersion && model.kind === kind ? model : undefined;
}

/**
 * What the API server would refuse in one object: its schema's errors (types, required fields,
 * patterns, enums: kubernetes-models' validators, compiled from the Kubernetes OpenAPI schemas and
 * the Prometheus Operator's CRDs), and fields the schema does not have, which
 * `kubectl apply --validate=strict` refuses and the schemas alone let through (a misspelt
 * `readinesProbe` would otherwise be dropped silently). Empty when the object is valid.
 */
export function schemaProblems(object: Json): string[] {
  const where = `${object?.kind}/${object?.metadata?.name}`;
  const model = modelOf(String(object?.apiVersion), String(object?.kind));
  if (!model) return [`${where}: no schema for apiVersion ${object?.apiVersion}, kind ${object?.kind}`];
  const reads = new FieldReads();
  const problems: string[] = [];
  try {
    model.prototype.validate.call(reads.watch(object, ""));
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
  }
  return [...problems, ...reads.unknownFields(object, "").map((path) => `${where}: unknown field ${path}`)];
}

/**
 * Which fields a schema validator looked at. The compiled validators read every property their
 * schema defines and enumerate the keys only of maps (labels, resource lists): so a key that was
 * neither read nor enumerated is one the schema does not know.
 */
class FieldReads {
  private readonly read = new Set<string>();
  private readonly maps = new Set<string>();

  watch(value: unknown, path: string): unknown {
    if (value === null || typeof value !== "object") return value;
    return new Proxy(value, {
      get: (target, key, receiver) => {
        const v: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== "string") return v;
        this.read.add(`${path}/${key}`);
        return this.watch(v, `${path}/${key}`);
      },
      ownKeys: (target) => {
        this.maps.add(path);
        return Reflect.ownKeys(target);
      },
    });
  }

  unknownFields(value: unknown, path: string): string[] {
    if (value === null || typeof value !== "object") return [];
    return Object.entries(value).flatMap(([key, v]) => {
      const at = `${path}/${key}`;
      // What lies under an unknown field is not the schema's either: the field alone is reported.
      if (!Array.isArray(value) && !this.maps.has(path) && !this.read.has(at)) return [at];
      return this.unknownFields(v, at);
    });
  }
}
