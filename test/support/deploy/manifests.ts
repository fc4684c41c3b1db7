import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { projectRoot } from "../../../contracts/runtime/project-root.js";
import type { Json } from "../json.js";

export const KUBERNETES_DIR = join(projectRoot(), "deploy", "kubernetes");

/** The Secrets template operators fill in; not a resource of the kustomization, so apply -k never overwrites real keys. */
export const SECRETS_TEMPLATE = "secrets.example.yaml";

/** kustomization.yaml as written: a plain list of resource files. */
export function kustomization(): Json {
  return parseAllDocuments(readFileSync(join(KUBERNETES_DIR, "kustomization.yaml"), "utf8"))[0]!.toJS();
}

/** Every object of a YAML file, in order (empty documents left out). */
export function objectsIn(file: string): Json[] {
  return parseAllDocuments(readFileSync(join(KUBERNETES_DIR, file), "utf8"))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      return doc.toJS();
    })
    .filter((object) => object !== null && object !== undefined);
}

/**
 * What `kubectl apply -k deploy/kubernetes` applies, read without the kustomize binary: the
 * kustomization is a plain list of files (a test checks that it uses nothing else), so its
 * rendering is those files' objects in order.
 */
export function renderedObjects(): Json[] {
  return (kustomization().resources as string[]).flatMap((file) => objectsIn(file));
}

/** The pod template of a workload (Deployment, StatefulSet, DaemonSet), or undefined for other kinds. */
export function podTemplateOf(object: Json): Json {
  return ["Deployment", "StatefulSet", "DaemonSet"].includes(object.kind) ? object.spec.template : undefined;
}

export function named(objects: Json[], kind: string, name: string): Json {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among the manifests`);
  return found;
}

/** The value after `--flag` in an argument list. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(`--${flag}`);
  return i < 0 ? undefined : args[i + 1];
}

/** The container's volume mount whose path holds `path`, the longest one when mounts nest. */
export function mountHolding(container: Json, path: string): Json {
  return ((container.volumeMounts ?? []) as Json[])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
}

/** Does a label selector's matchLabels (or a Service's selector) pick these labels? */
export function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  const wanted = Object.entries(selector ?? {});
  return wanted.length > 0 && wanted.every(([k, v]) => labels?.[k] === v);
}
