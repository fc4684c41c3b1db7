// The engine instances a model switcher starts: for --engine-cmd, one
// supervised engine process per model (its command's placeholders filled in,
// a port of its own when the command takes {port}) with the engine's HTTP
// adapter pointed at it; for the embedded engine, one llama.cpp model in this
// process.
import { createServer } from "node:net";
import type { Logger } from "../../contracts/runtime/logger.js";
import type { EngineAdapter } from "../engine-adapter.js";
import type { HttpEngineOptions } from "../http/engine-options.js";
import { EmbeddedLlamaAdapter, type EmbeddedOptions } from "../llamacpp-embedded/embedded-adapter.js";
import { placeholdersIn, substituteCommand } from "../supervisor/engine-command.js";
import { EngineSupervisor } from "../supervisor/engine-supervisor.js";
import { HEALTH_PATH, httpProbe, SupervisedAdapter } from "../supervisor/supervised-adapter.js";
import type { EngineInstances } from "./model-switcher.js";
import type { PreparedModel } from "./model-preparer.js";

export interface SupervisedInstancesOptions {
  /** The engine's adapter: llamacpp, vllm, tgi, triton, openai. */
  adapterName: string;
  /** --engine-cmd, placeholders and all. */
  command: string;
  /** --engine-url; optional when the command takes {port} (then only its scheme and host are used). */
  engineUrl: string | undefined;
  /** --model: what Info names before the first instance runs. */
  modelRef: string;
  /** The adapter's options but the URL and the model. */
  http: Omit<HttpEngineOptions, "baseUrl" | "modelRef">;
  ctxPerSlot: number;
  slots: number;
  /** The replica's device selection (CUDA_VISIBLE_DEVICES, …) for every engine process. */
  env: Record<string, string | undefined> | undefined;
  createHttpAdapter(options: HttpEngineOptions): EngineAdapter;
  logger: Logger;
}

export function supervisedInstances(o: SupervisedInstancesOptions): EngineInstances {
  const used = placeholdersIn(o.command);
  if (!used.has("port") && !o.engineUrl)
    throw new Error(
      `--engine-url is required for the ${o.adapterName} adapter, unless --engine-cmd takes {port} (the sidecar then picks one)`,
    );
  const base = new URL(o.engineUrl ?? "http://127.0.0.1");
  // URL keeps an IPv6 host in brackets; the engine's --host wants it bare.
  const host = base.hostname.replace(/^\[(.*)\]$/, "$1");
  const blank = o.createHttpAdapter({ ...o.http, baseUrl: urlOf(base), modelRef: o.modelRef });
  const described = { info: blank.info(), slots: blank.slotsTotal(), evicts: blank.evictSession !== undefined };
  void blank.stop();
  return {
    blank: described,
    loadsFiles: used.has("model_path"),
    besideBlocked: used.has("port") ? undefined : "the engine command has no {port}: a second instance would need the running one's port",
    async create(model: PreparedModel, how: { firstStart: boolean }): Promise<EngineAdapter> {
      const port = used.has("port") ? await freePort(host) : undefined;
      const baseUrl = port === undefined ? urlOf(base) : withPort(base, port);
      const command = substituteCommand(o.command, {
        model_path: model.path,
        port,
        host,
        ctx: o.ctxPerSlot,
        ctx_total: o.ctxPerSlot * o.slots,
        slots: o.slots,
      });
      const logger = o.logger.child({ engine_process: o.adapterName, engine_url: baseUrl });
      logger.info(
        { event: "engine_instance", model_ref: model.ref, model_path: model.path },
        `starting ${o.adapterName} for ${model.ref} at ${baseUrl}`,
      );
      const supervisor = new EngineSupervisor({
        command,
        env: o.env,
        probe: httpProbe(baseUrl, HEALTH_PATH[o.adapterName] ?? "/health"),
        logger,
        // A model being switched to that crashes the engine is rolled back, not retried; the sidecar's own first start keeps restarting.
        crashFailsStart: !how.firstStart,
      });
      return new SupervisedAdapter(o.createHttpAdapter({ ...o.http, baseUrl, modelRef: model.ref }), supervisor);
    },
  };
}

/** The embedded engine: every model a llama.cpp model of its own in this process, beside or instead of the last. */
export function embeddedInstances(options: EmbeddedOptions, logger: Logger): EngineInstances {
  const blank = new EmbeddedLlamaAdapter(options, logger);
  return {
    blank: { info: blank.info(), slots: blank.slotsTotal(), evicts: true },
    loadsFiles: true,
    besideBlocked: undefined,
    // eslint-disable-next-line @typescript-eslint/require-await -- an instance is cheap here; a supervised one needs a port first
    create: async (model, how) =>
      new EmbeddedLlamaAdapter({ ...options, modelRef: model.ref, modelPath: model.path, onLoadProgress: how.onLoadProgress }, logger),
  };
}

function withPort(base: URL, port: number): string {
  const url = new URL(base.href);
  url.port = String(port);
  return urlOf(url);
}

/** The engine's base URL as the adapters take it: no trailing slash. */
function urlOf(url: URL): string {
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** A port nobody listens on now, on the engine's host: the kernel's pick, released for the engine to take. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
