/**
 * Running several actors in one process (`shoal dev`, `shoal start`), each
 * with its own connection, and stopping them together on SIGINT/SIGTERM
 * within a drain deadline.
 */
import type { NatsConfig, RuntimeConfig, StorageConfig, HealthConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { ActorInstance, type ActorDefinition } from "./actor.ts";
import type { Readiness } from "../metrics/index.ts";

/** Ready when every instance is (see ActorInstance.readiness). */
export async function instancesReady(instances: readonly ActorInstance[]): Promise<Readiness> {
  if (instances.length === 0) return { ready: false, reason: "no actor is running" };
  for (const r of await Promise.all(instances.map((i) => i.readiness()))) if (!r.ready) return r;
  return { ready: true };
}

export interface StartActorsOptions {
  nats: NatsConfig;
  runtime: RuntimeConfig;
  storage?: StorageConfig;
  health?: HealthConfig;
  logger: Logger;
}

export interface RunningActors {
  readonly instances: readonly ActorInstance[];
  /** Drains every instance (in parallel) within the runtime's drain deadline. */
  stop(deadlineMs?: number): Promise<void>;
}

/** Starts one instance of each definition. If one fails to start, the others are stopped and the error rethrown. */
export async function startActors(defs: readonly ActorDefinition[], opts: StartActorsOptions): Promise<RunningActors> {
  const instances: ActorInstance[] = [];
  const stop = async (deadlineMs = opts.runtime.drainTimeoutMs) => {
    await Promise.allSettled(instances.map((i) => i.stop(deadlineMs)));
  };
  try {
    for (const def of defs) {
      const inst = new ActorInstance(def, { nats: opts.nats, runtime: opts.runtime, logger: opts.logger, ...(opts.storage ? { storage: opts.storage } : {}), ...(opts.health ? { health: opts.health } : {}) });
      instances.push(inst);
      await inst.start();
    }
  } catch (e) {
    await stop(1000);
    throw e;
  }
  return { instances, stop };
}

/**
 * A graceful stop of one process within `deadlineMs`: the HTTP edge (the S3
 * gateway) stops taking connections and lets its requests in flight finish
 * for half the deadline, then the actors drain in what is left (at least
 * 1 s) — in that order, because the edge's requests need the actors.
 */
export async function drainProcess(deadlineMs: number, edge: { close(graceMs?: number): Promise<void> } | undefined, actors: { stop(deadlineMs?: number): Promise<void> } | undefined): Promise<void> {
  const t0 = Date.now();
  await edge?.close(Math.floor(deadlineMs / 2));
  await actors?.stop(Math.max(1000, deadlineMs - (Date.now() - t0)));
}

/**
 * On the first SIGINT or SIGTERM, runs `stop` (which should finish within
 * `deadlineMs`); if it has not finished by deadline + 2 s, or on a second
 * signal, exits at once with status 130. Returns a function that removes the
 * handlers.
 */
export function installSignalHandlers(stop: () => Promise<void>, deadlineMs: number, exit: (code: number) => void = (c) => process.exit(c)): () => void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      process.stderr.write(`shoal: ${signal} again, exiting now\n`);
      exit(130);
      return;
    }
    stopping = true;
    const force = setTimeout(() => {
      process.stderr.write("shoal: drain deadline passed, exiting\n");
      exit(130);
    }, deadlineMs + 2000);
    force.unref();
    stop().then(
      () => clearTimeout(force),
      (e: unknown) => {
        clearTimeout(force);
        process.stderr.write(`shoal: stop failed: ${String(e)}\n`);
        exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}
