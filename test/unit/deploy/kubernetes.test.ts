import test from "ava";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Json } from "../../support/json.js";
import { commandLineProblems, ROLES, type Role } from "../../support/deploy/component-flags.js";
import { schemaProblems } from "../../support/deploy/kubernetes-schema.js";
import {
  flagValue,
  KUBERNETES_DIR,
  kustomization,
  mountHolding,
  named,
  objectsIn,
  podTemplateOf,
  renderedObjects,
  SECRETS_TEMPLATE,
  selects,
} from "../../support/deploy/manifests.js";

const objects = renderedObjects();
const secrets = objectsIn(SECRETS_TEMPLATE);
const workloads = objects.filter((o) => podTemplateOf(o) !== undefined);

/** Every container of every workload, with its pod template and where it is. */
const containers = workloads.flatMap((w) => {
  const pod = podTemplateOf(w);
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c: Json) => ({
    c,
    pod,
    where: `${w.kind}/${w.metadata.name}/${c.name}`,
  }));
});

const clone = (o: Json): Json => structuredClone(o);

test("kustomization.yaml is a plain list of resource files, so this test renders what apply -k applies", (t) => {
  const k = kustomization();
  t.deepEqual(Object.keys(k).sort(), ["apiVersion", "kind", "resources"], "no generators, patches or transformers");
  for (const file of k.resources as string[])
    t.true(existsSync(join(KUBERNETES_DIR, file)) && statSync(join(KUBERNETES_DIR, file)).isFile(), file);
  t.false((k.resources as string[]).includes(SECRETS_TEMPLATE), "the Secrets template is applied by hand, never by apply -k");
  t.true(objects.length >= 10);
  for (const o of objects.filter((o) => o.kind !== "Namespace")) t.is(o.metadata.namespace, "llorch", `${o.kind}/${o.metadata.name}`);
});

test("every object, the Secrets template's too, is valid against its Kubernetes schema and has no unknown field", (t) => {
  t.deepEqual([...objects, ...secrets].flatMap(schemaProblems), []);
  t.truthy(
    objects.find((o) => o.kind === "ServiceMonitor" && o.apiVersion === "monitoring.coreos.com/v1"),
    "checked against its CRD schema",
  );
});

test("the schema check refuses what the API server would: a wrong type, a misspelt field, a bad CRD value, an unknown kind", (t) => {
  const core = clone(named(objects, "StatefulSet", "llorch-core"));
  core.spec.replicas = "1";
  t.regex(schemaProblems(core).join("\n"), /replicas must be integer/);

  const edge = clone(named(objects, "Deployment", "llorch-edge"));
  edge.spec.template.spec.containers[0].readinesProbe = edge.spec.template.spec.containers[0].readinessProbe;
  t.deepEqual(schemaProblems(edge), ["Deployment/llorch-edge: unknown field /spec/template/spec/containers/0/readinesProbe"]);

  const monitor = clone(named(objects, "ServiceMonitor", "llorch"));
  monitor.spec.endpoints[0].interval = "every 15 seconds";
  t.regex(schemaProblems(monitor).join("\n"), /interval must match pattern/);

  t.deepEqual(schemaProblems({ apiVersion: "example.com/v1", kind: "Thing", metadata: { name: "x" } }), [
    "Thing/x: no schema for apiVersion example.com/v1, kind Thing",
  ]);
});

test("core is one StatefulSet replica with its catalog, artifacts and journal on its PersistentVolumeClaim", (t) => {
  const core = named(objects, "StatefulSet", "llorch-core");
  t.is(core.spec.replicas, 1, "one core: the journal and the queues belong to one process");
  const claims = (core.spec.volumeClaimTemplates as Json[]).map((v) => v.metadata.name);
  t.true(claims.length > 0);
  const container = core.spec.template.spec.containers.find((c: Json) => c.args[0] === "core");
  for (const flag of ["catalog-root", "artifacts-root", "journal-root"]) {
    const dir = flagValue(container.args, flag);
    t.truthy(dir, `--${flag} is given`);
    t.true(claims.includes(mountHolding(container, dir!)?.name), `--${flag} ${dir} is on a PersistentVolumeClaim`);
  }
});

test("the edge is a Deployment ready on /readyz and live on /healthz, behind a Service and an autoscaling/v2 HPA", (t) => {
  const edge = named(objects, "Deployment", "llorch-edge");
  const container = edge.spec.template.spec.containers.find((c: Json) => c.args[0] === "edge");
  const portNames = (container.ports as Json[]).map((p) => p.name);
  t.is(container.readinessProbe.httpGet.path, "/readyz");
  t.is(container.livenessProbe.httpGet.path, "/healthz");
  t.true(portNames.includes(container.readinessProbe.httpGet.port) && portNames.includes(container.livenessProbe.httpGet.port));
  t.truthy(objects.find((o) => o.kind === "Service" && selects(o.spec.selector, edge.spec.template.metadata.labels)));
  const hpa = objects.find((o) => o.kind === "HorizontalPodAutoscaler");
  t.is(hpa.apiVersion, "autoscaling/v2");
  t.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: "apps/v1", kind: "Deployment", name: "llorch-edge" });
  t.truthy(container.resources.requests.cpu, "CPU utilization needs a CPU request");
  t.is(edge.spec.replicas, undefined, "the HPA owns the replica count");
});

test("workers are a DaemonSet on GPU nodes that asks for nvidia.com/gpu and keeps its model cache on the node", (t) => {
  const ds = named(objects, "DaemonSet", "llorch-worker");
  const spec = ds.spec.template.spec;
  t.true(
    Object.keys(spec.nodeSelector ?? {}).some((k) => k.startsWith("nvidia.com/")),
    "a node selector for GPU nodes",
  );
  const container = spec.containers.find((c: Json) => c.args[0] === "worker");
  t.true(Number(container.resources.limits["nvidia.com/gpu"]) >= 1);
  t.is(container.resources.requests["nvidia.com/gpu"], container.resources.limits["nvidia.com/gpu"]);
  const cache = flagValue(container.args, "model-cache")!;
  const volume = spec.volumes.find((v: Json) => v.name === mountHolding(container, cache)?.name);
  t.true(volume?.hostPath !== undefined || volume?.persistentVolumeClaim !== undefined, `--model-cache ${cache} outlives the pod`);
  t.regex(container.image, /-cuda$/, "the image's CUDA variant");
});

test("every container runs as non-root with a read-only root filesystem, no privilege to gain and no capability", (t) => {
  t.true(containers.length >= 3);
  for (const { c, pod, where } of containers) {
    const s = c.securityContext ?? {};
    const podS = pod.spec.securityContext ?? {};
    t.true((s.runAsNonRoot ?? podS.runAsNonRoot) === true, `${where}: runAsNonRoot`);
    t.not(s.runAsUser ?? podS.runAsUser, 0, `${where}: not uid 0`);
    t.true(s.readOnlyRootFilesystem, `${where}: readOnlyRootFilesystem`);
    t.false(s.allowPrivilegeEscalation, `${where}: allowPrivilegeEscalation false`);
    t.deepEqual(s.capabilities?.drop, ["ALL"], `${where}: drops every capability`);
  }
});

test("every container runs `llorch <role>` (the image's entrypoint) with flags that role has and values it accepts", (t) => {
  for (const { c, where } of containers) {
    t.is(c.command, undefined, `${where}: the image's entrypoint runs, not another command`);
    const [role, ...flags] = c.args as string[];
    t.true(ROLES.includes(role as Role), `${where}: ${role} is a role`);
    t.deepEqual(commandLineProblems(role as Role, flags), [], where);
  }
  t.deepEqual(new Set(containers.map(({ c }) => c.args[0])), new Set(ROLES), "core, edge and worker each run");
});

/** The keys a Secret holds. */
function secretKeys(name: string): string[] | undefined {
  const s = secrets.find((o) => o.kind === "Secret" && o.metadata.name === name);
  return s && Object.keys({ ...s.data, ...s.stringData });
}

test("every Secret a pod reads is in the Secrets template, with each key it reads", (t) => {
  const refs: { secret: string; key?: string; where: string }[] = [];
  for (const w of workloads) {
    const pod = podTemplateOf(w);
    const where = `${w.kind}/${w.metadata.name}`;
    for (const v of pod.spec.volumes ?? []) {
      if (!v.secret) continue;
      const items = (v.secret.items ?? []) as Json[];
      refs.push(
        ...(items.length
          ? items.map((i) => ({ secret: v.secret.secretName, key: i.key, where }))
          : [{ secret: v.secret.secretName, where }]),
      );
    }
    for (const c of pod.spec.containers) {
      for (const e of c.env ?? [])
        if (e.valueFrom?.secretKeyRef) refs.push({ secret: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key, where });
      for (const e of c.envFrom ?? []) if (e.secretRef) refs.push({ secret: e.secretRef.name, where });
    }
  }
  t.true(refs.length >= 5);
  for (const ref of refs) {
    const keys = secretKeys(ref.secret);
    t.truthy(keys, `${ref.where}: Secret ${ref.secret} is in ${SECRETS_TEMPLATE}`);
    if (ref.key) t.true(keys?.includes(ref.key), `${ref.where}: Secret ${ref.secret} has key ${ref.key}`);
  }
});

test("every file a flag names is inside a volume the container mounts, and a Secret's file is one of its keys", (t) => {
  let files = 0;
  for (const { c, pod, where } of containers) {
    for (const path of (c.args as string[]).filter((a) => a.startsWith("/"))) {
      const mount = mountHolding(c, path);
      t.truthy(mount, `${where}: ${path} is in a mounted volume`);
      const volume = pod.spec.volumes?.find((v: Json) => v.name === mount?.name);
      if (!volume?.secret) continue;
      files++;
      const file = path.slice(mount.mountPath.length + 1);
      const items = (volume.secret.items ?? []) as Json[];
      const keys = items.length ? items.map((i) => i.path) : secretKeys(volume.secret.secretName);
      t.true(keys?.includes(file), `${where}: ${path} is key ${file} of Secret ${volume.secret.secretName}`);
    }
  }
  t.true(files >= 5, "keys files and certificates come from Secrets");
});

test("Services select pods and name ports those pods have; the ServiceMonitor scrapes a metrics port of every Service", (t) => {
  const services = objects.filter((o) => o.kind === "Service");
  for (const svc of services) {
    const pod = workloads.map(podTemplateOf).find((p) => selects(svc.spec.selector, p.metadata.labels));
    t.truthy(pod, `Service ${svc.metadata.name} selects a workload's pods`);
    const portNames = (pod?.spec.containers as Json[]).flatMap((c) => (c.ports ?? []).map((p: Json) => p.name));
    for (const port of svc.spec.ports) t.true(portNames.includes(port.targetPort), `Service ${svc.metadata.name}: ${port.targetPort}`);
  }
  const monitor = named(objects, "ServiceMonitor", "llorch");
  const scraped = services.filter((s) => selects(monitor.spec.selector.matchLabels, s.metadata.labels));
  t.deepEqual(scraped.map((s) => s.metadata.name).sort(), ["llorch-core", "llorch-edge", "llorch-worker"]);
  for (const s of scraped)
    t.true(
      s.spec.ports.some((p: Json) => p.name === monitor.spec.endpoints[0].port),
      s.metadata.name,
    );
});
