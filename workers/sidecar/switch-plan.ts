// How a model gets onto the engine, decided before any engine starts: beside
// the running one (a second instance, traffic switched once it is Ready), in
// its place (the running one stopped first, resumed if the new one fails), or
// not at all (it cannot fit even alone). Pure: from the models' memory facts
// and the replica's memory as last measured, which already has the running
// model in it.
import type { ResolvedMask } from "../hardware/device-mask.js";
import type { ModelMemory } from "../hardware/gguf-model-memory.js";
import type { HardwareSnapshot } from "../hardware/hardware-poller.js";
import { bytes, kvBytesPerToken, type FitVerdict } from "../hardware/model-fit.js";
import { checkFitOnReplica } from "../hardware/replica-fit.js";

/** A model as the plan sees it; `memory` undefined when its need cannot be read (not a GGUF file: a repository for vLLM, say). */
export interface PlannedModel {
  ref: string;
  memory: ModelMemory | undefined;
}

export interface SwitchFacts {
  next: PlannedModel;
  /** What serves now; undefined when nothing does (the first start, an unloaded model). */
  running: PlannedModel | undefined;
  /** Why no second instance can run beside the first (a command without {port}); undefined when one can. */
  besideBlocked?: string;
  /** Context per slot asked for; a model trained on less gets its own. */
  ctxPerSlot: number;
  slots: number;
  mask: ResolvedMask;
  snapshot: HardwareSnapshot;
}

export type SwitchAction =
  /** Nothing runs: start it. */
  | "start"
  /** Start a second instance, switch traffic once it is Ready, then stop the old one. */
  | "beside"
  /** Stop the running instance (after its generations), then start the new one; on failure resume the old. */
  | "stop-first"
  /** It cannot fit, even alone: nothing is started or stopped. */
  | "refuse";

export interface SwitchPlan {
  action: SwitchAction;
  /** A sentence for logs and errors: which, and why. */
  reason: string;
}

export function planSwitch(facts: SwitchFacts): SwitchPlan {
  const { next, running } = facts;
  if (!running) return planStart(facts);
  if (!next.memory)
    return stopFirst(`the memory ${next.ref} needs is unknown (not a GGUF file), so ${running.ref} is stopped before it starts`);
  const alone = fitOf(next.memory, facts, freedBy(running, facts));
  if (facts.besideBlocked) {
    if (!alone.fits) return refuse(`${next.ref} cannot fit, even with ${running.ref} stopped: it ${alone.reason}`);
    return stopFirst(`${facts.besideBlocked}, so ${running.ref} is stopped first (${next.ref} ${alone.reason})`);
  }
  const beside = fitOf(next.memory, facts, 0);
  if (beside.fits) return { action: "beside", reason: `${next.ref} fits beside ${running.ref}: it ${beside.reason}` };
  if (!running.memory)
    return stopFirst(
      `${next.ref} does not fit beside ${running.ref} (it ${beside.reason}) and what ${running.ref} frees is unknown, so it is stopped first`,
    );
  if (!alone.fits) return refuse(`${next.ref} cannot fit, even with ${running.ref} stopped: it ${alone.reason}`);
  return stopFirst(
    `${next.ref} does not fit beside ${running.ref} (it ${beside.reason}), but does once ${running.ref} frees ${bytes(freedBy(running, facts))}, so ${running.ref} is stopped first`,
  );
}

function planStart(facts: SwitchFacts): SwitchPlan {
  const { next } = facts;
  if (!next.memory) return { action: "start", reason: `the memory ${next.ref} needs is unknown (not a GGUF file): no fit check` };
  const fit = fitOf(next.memory, facts, 0);
  if (!fit.fits) return refuse(`${next.ref} cannot fit: it ${fit.reason}`);
  return { action: "start", reason: `${next.ref} ${fit.reason}` };
}

function stopFirst(reason: string): SwitchPlan {
  return { action: "stop-first", reason };
}

function refuse(reason: string): SwitchPlan {
  return { action: "refuse", reason };
}

/** Context per slot for this model: what was asked, at most what it was trained on (as the engines cap it). */
export function ctxPerSlotOf(memory: ModelMemory, ctxPerSlot: number): number {
  return Math.max(1, Math.min(ctxPerSlot, memory.contextLength ?? ctxPerSlot));
}

function fitOf(memory: ModelMemory, facts: SwitchFacts, freedBytes: number): FitVerdict {
  return checkFitOnReplica(memory, facts.mask, facts.snapshot, {
    ctxPerSlot: ctxPerSlotOf(memory, facts.ctxPerSlot),
    slots: facts.slots,
    freedBytes,
  });
}

/** What stopping the running model gives back: its weights and KV cache, as estimated for it (0 when unknown). */
function freedBy(running: PlannedModel, facts: SwitchFacts): number {
  const memory = running.memory;
  if (!memory) return 0;
  const kv = memory.kv ? kvBytesPerToken(memory.kv) * ctxPerSlotOf(memory, facts.ctxPerSlot) * facts.slots : 0;
  return memory.weightsBytes + kv;
}
