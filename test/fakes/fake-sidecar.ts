// A worker sidecar a test drives by hand: it registers with core like the
// real one (RegistryService.Register held open), serves WorkerService, and
// reports exactly the health, load state and props the test sets, so core's
// side of provisioning (load progress, digests, waking an unloaded model)
// can be tested without the sidecar's own provisioning. What LoadModel and
// Submit do is the test's to say.
import {
  credentials,
  Metadata,
  status as GrpcStatus,
  type ClientReadableStream,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceError,
} from "@grpc/grpc-js";
import { Engine, ErrorCode, StopReason, Workload } from "../../contracts/gen/llama_orch/v1/common.js";
import { RegistryServiceClient, type RegisterResponse } from "../../contracts/gen/llama_orch/v1/registry.js";
import {
  WorkerServiceService,
  type InfoResponse,
  type LoadModelRequest,
  type LoadModelResponse,
  type SubmitRequest,
  type SubmitResponse,
  type WorkerHealth,
  type WorkerLoadState,
  type WorkerServiceServer,
} from "../../contracts/gen/llama_orch/v1/worker.js";
import { serviceErrorOf } from "../../contracts/runtime/error-status.js";
import { startGrpcServer, type RunningGrpcServer } from "../../contracts/runtime/grpc-server.js";
import { createLogger } from "../../contracts/runtime/logger.js";

export interface FakeSidecarOptions {
  core: string;
  pool: string;
  replica: string;
  modelRef: string;
  engine?: Engine;
  slots?: number;
  ctxMax?: number;
}

type Watcher = (m: { health: WorkerHealth; load: WorkerLoadState | undefined }) => void;
export type SubmitCall = ServerWritableStream<SubmitRequest, SubmitResponse>;

const READY: WorkerHealth = { live: true, ready: true, lastError: "" };

export class FakeSidecar {
  readonly loads: LoadModelRequest[] = [];
  readonly submits: SubmitRequest[] = [];
  /** What LoadModel does; by default it switches to the model at once. */
  onLoadModel: (request: LoadModelRequest) => Promise<void> = () => Promise.resolve();
  /** What Submit does; by default one token and the end. */
  onSubmit: (call: SubmitCall) => void | Promise<void> = (call) => FakeSidecar.generate(call, ["hi"]);
  private health: WorkerHealth = READY;
  private load: WorkerLoadState | undefined;
  private modelRef: string;
  private readonly watchers = new Set<Watcher>();
  private registration: ClientReadableStream<RegisterResponse> | undefined;
  private readonly instanceId = crypto.randomUUID();
  private registry: RegistryServiceClient | undefined;

  private constructor(
    private readonly options: FakeSidecarOptions,
    private readonly server: RunningGrpcServer,
  ) {
    this.modelRef = options.modelRef;
  }

  static async start(options: FakeSidecarOptions): Promise<FakeSidecar> {
    const made: { fake?: FakeSidecar } = {};
    const server = await startGrpcServer({
      host: "127.0.0.1",
      port: 0,
      logger: createLogger("fake-sidecar"),
      services: [{ name: "llama_orch.v1.WorkerService", definition: WorkerServiceService, implementation: handlers(() => made.fake!) }],
    });
    made.fake = new FakeSidecar(options, server);
    made.fake.register();
    return made.fake;
  }

  /** started → one token batch per text → end. */
  static generate(call: SubmitCall, texts: string[]): void {
    call.write({ event: { $case: "started", started: { tokensIn: 1 } } });
    call.write({ event: { $case: "tokens", tokens: { firstIndex: 0, texts } } });
    call.write({
      event: {
        $case: "end",
        end: { tokensOut: texts.length, tokensIn: 1, decodeTimeMs: 1, stopReason: StopReason.STOP_REASON_MAX_TOKENS },
      },
    });
    call.end();
  }

  get address(): string {
    return this.server.address;
  }

  get currentModel(): string {
    return this.modelRef;
  }

  /** Reports new health and load state on WatchHealth, as the sidecar does with every change. */
  report(health: Partial<WorkerHealth>, load?: WorkerLoadState): void {
    this.health = { ...READY, ...health };
    this.load = load;
    for (const w of this.watchers) w({ health: this.health, load: this.load });
  }

  /** Serves `modelRef` from now on (what Info says), ready. */
  serve(modelRef: string): void {
    this.modelRef = modelRef;
    this.report({});
  }

  async close(): Promise<void> {
    this.registration?.cancel();
    this.registry?.close();
    await this.server.shutdown(200);
  }

  info(): InfoResponse {
    return {
      engine: this.options.engine ?? Engine.ENGINE_LLAMACPP,
      adapter: "fake",
      engineVersion: "fake-1",
      modelRef: this.modelRef,
      modelDigest: "",
      ctxMax: this.options.ctxMax ?? 8192,
      workloads: [Workload.WORKLOAD_COMPLETION],
      deviceMask: "cpu",
      vramTotalBytes: 0,
      vramFreeBytes: 0,
      servesAnyModel: false,
      features: {},
      poolId: this.options.pool,
      replicaId: this.options.replica,
    };
  }

  watch(w: Watcher): () => void {
    this.watchers.add(w);
    w({ health: this.health, load: this.load });
    return () => this.watchers.delete(w);
  }

  private register(): void {
    this.registry = new RegistryServiceClient(this.options.core, credentials.createInsecure());
    this.registration = this.registry.register({
      address: this.address,
      poolId: this.options.pool,
      replicaId: this.options.replica,
      engine: this.options.engine ?? Engine.ENGINE_LLAMACPP,
      modelRef: this.options.modelRef,
      slotsTotal: this.options.slots ?? 2,
      servesAnyModel: false,
      instanceId: this.instanceId,
      heldTaskIds: [],
    });
    this.registration.on("error", () => {});
  }
}

/** A LoadModel refusal as the sidecar sends it for a digest mismatch: FAILED_PRECONDITION, UNTRUSTED_ARTIFACT in the trailer. */
export function untrustedRefusal(message: string): Error & Partial<ServiceError> {
  const typed = serviceErrorOf({
    code: ErrorCode.ERROR_CODE_UNTRUSTED_ARTIFACT,
    message,
    engine: Engine.ENGINE_UNSPECIFIED,
    retriable: false,
    policyLabel: "",
    field: "",
  });
  return Object.assign(new Error(message), typed, { code: GrpcStatus.FAILED_PRECONDITION });
}

function handlers(fake: () => FakeSidecar): WorkerServiceServer {
  const unary = <Req, Res>(fn: (request: Req) => Res | Promise<Res>) => {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (err: Partial<ServiceError>) =>
            callback(
              {
                code: err.code ?? GrpcStatus.FAILED_PRECONDITION,
                details: err.details ?? err.message,
                metadata: err.metadata ?? new Metadata(),
              },
              null,
            ),
        );
    };
  };
  return {
    health: unary(() => ({ health: READY, load: undefined })),
    watchHealth: (call) => {
      const off = fake().watch((m) => call.write(m));
      call.on("cancelled", off);
    },
    props: unary(() => ({ props: { slotsTotal: 2, slotsFree: 2, requestsWaiting: 0 } })),
    watchProps: (call) => call.write({ props: { slotsTotal: 2, slotsFree: 2, requestsWaiting: 0 } }),
    info: unary(() => fake().info()),
    cancel: unary(() => ({ found: false })),
    evictSession: unary(() => ({ supported: false, evicted: false })),
    loadModel: unary(async (request: LoadModelRequest): Promise<LoadModelResponse> => {
      const f = fake();
      f.loads.push(request);
      try {
        await f.onLoadModel(request);
      } catch (err) {
        // As the contract says: a load that fails leaves the previous model serving.
        f.serve(f.currentModel);
        throw err;
      }
      f.serve(request.modelRef);
      return { modelRef: request.modelRef, modelDigest: request.expectedDigest, engineVersion: "fake-1" };
    }),
    submit: (call) => {
      fake().submits.push(call.request);
      void Promise.resolve(fake().onSubmit(call));
    },
  };
}
