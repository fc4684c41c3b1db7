import test from "ava";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { dockerfileStages } from "../support/deploy/dockerfile.js";
import { imageLayout } from "../support/deploy/image-layout.js";
import { api } from "../support/http.js";
import { upBanner } from "../support/up-banner.js";

// The image cannot be built here (no Docker daemon, no registry but npm's and Debian's), so this
// runs what it would hold: the files its COPY lines take, under its WORKDIR, started as its
// ENTRYPOINT starts them. A file the image forgets (an OpenAPI document, the console's page,
// the descriptor set) fails it.
test("the files the Dockerfile puts in the image run core, the edge and a sidecar", async (t) => {
  const layout = imageLayout(dockerfileStages());
  t.teardown(() => rmSync(layout.root, { recursive: true, force: true }));
  const script = layout.entrypoint.at(-1)!;
  t.true(existsSync(script), `${script} is in the image`);
  t.is(layout.env["NODE_ENV"], "production");

  const child = spawn(process.execPath, [script, "up", "--quiet", "--core-port", "0", "--edge-port", "0", "--workers", "1"], {
    cwd: layout.workdir,
    env: { ...process.env, ...layout.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  t.teardown(() => child.kill("SIGKILL"));
  const out = await upBanner(child, { timeoutMs: 60_000, withStderr: true });
  const edge = /edge \(HTTP API\)\s+(http:\/\/\S+)/.exec(out)![1]!;

  t.is((await api(t, edge, "GET", "/readyz")).status, 200, "core answers and the sidecar's pool takes tasks");
  t.is((await api(t, edge, "GET", "/openapi.json")).status, 200);
  t.is((await api(t, edge, "GET", "/ui/index.html")).status, 200);

  child.kill("SIGTERM");
  t.is(await new Promise<number | null>((resolve) => child.once("exit", resolve)), 0);
});
