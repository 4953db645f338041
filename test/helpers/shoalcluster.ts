/**
 * Shoal on a real 3-server JetStream cluster, as the model test drives it:
 * every route and client port behind a fault proxy (test/helpers/nats.ts),
 * two storage actors and a replicator (in this process, each with its own
 * connection through the proxies), and an SDK client. Faults:
 *   killServer / startServer   SIGKILL of a nats-server, restart with data intact
 *   isolate / heal             one server's routes (and client links) cut, healed
 *   killActor / startActor     crash of an actor (ActorInstance.kill: no drain, no replies)
 * `settle()` undoes every fault and waits until the cluster has a meta leader
 * again. Everything is torn down by the test's teardown.
 */
import type { ExecutionContext } from "ava";
import { pino } from "pino";
import { jetstream, jetstreamManager, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { ActorInstance, type ActorDefinition } from "../../src/runtime/index.ts";
import { buildConfig } from "../../src/config.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { storage } from "../../actors/storage/index.ts";
import { replicator, EVENTS_DURABLE } from "../../actors/replicator/index.ts";
import { ShoalClient } from "../../src/client/index.ts";
import { EVENTS_STREAM, eventSubject, metaSubjectAll, objectStoreName, objectStoreStream } from "../../src/subjects/index.ts";
import { leaderGet } from "../../src/store/reader.ts";
import { withTimeout } from "../../src/runtime/backoff.ts";
import type { ObjectEvent } from "../../src/subjects/events.ts";
import { FAST_RUNTIME } from "./actors.ts";
import { connectTo, startProxiedCluster, type ProxiedCluster } from "./nats.ts";

export type ActorSlot = "storage-1" | "storage-2" | "replicator";
export const ACTOR_SLOTS: readonly ActorSlot[] = ["storage-1", "storage-2", "replicator"];

/** Resolves with `p`, or rejects with a Timeout-like error after `ms` (the operation may still land later). */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new DeadlineExceeded(`${what} took over ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

export class ShoalCluster {
  readonly actors = new Map<ActorSlot, ActorInstance | undefined>();
  private constructor(
    readonly pc: ProxiedCluster,
    readonly client: ShoalClient,
    readonly inspect: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly logger: Logger,
  ) {}

  static async start(t: ExecutionContext, o: { logger?: Logger; clientTimeoutMs?: number; clientDeadlineMs?: number } = {}): Promise<ShoalCluster> {
    const pc = await startProxiedCluster(t, 3, { readyTimeoutMs: 60_000, server: { startTimeoutMs: 60_000 } });
    const inspect = await connectTo(t, pc.urls, { maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const jsm = await jetstreamManager(inspect, { timeout: 10_000 });
    const client = await ShoalClient.connect({ servers: pc.urls }, { timeoutMs: o.clientTimeoutMs ?? 6000, deadlineMs: o.clientDeadlineMs ?? 30_000 });
    // SHOAL_MODEL_LOG=<file>: the actors' log lines (warn and up) go there, for a failure's post-mortem
    const logFile = process.env["SHOAL_MODEL_LOG"];
    const logger = o.logger ?? (logFile ? createLogger({ level: "warn", destination: pino.destination({ dest: logFile, sync: true }) }) : createLogger({ level: "silent" }));
    const sc = new ShoalCluster(pc, client, inspect, jsm, logger);
    // bounded: a close flushes first, and a cut proxy may not read
    t.teardown(async () => {
      for (const a of sc.actors.values()) await withTimeout(a?.kill().catch(() => undefined) ?? Promise.resolve(), 10_000);
      await withTimeout(client.close().catch(() => undefined), 10_000);
    });
    for (const slot of ACTOR_SLOTS) await sc.startActor(slot);
    return sc;
  }

  private def(slot: ActorSlot): ActorDefinition {
    return slot === "replicator" ? replicator : storage;
  }

  /**
   * Starts the actor in a slot. A start can fail while the cluster recovers
   * (its first JetStream requests time out when its server has just lost or
   * regained its routes); as a supervisor would, it is tried again, a bounded
   * number of times.
   */
  async startActor(slot: ActorSlot): Promise<void> {
    // A meta-leader election after a SIGKILL takes seconds, longer on a busy
    // machine ("JetStream system temporarily unavailable", timeouts).
    const until = Date.now() + 120_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startActorOnce(slot);
      } catch (e) {
        this.startFailures++;
        if (attempt >= 30 || Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Actor starts that failed and were tried again (reported in the summary). */
  startFailures = 0;

  private async startActorOnce(slot: ActorSlot): Promise<void> {
    if (this.actors.get(slot)) return;
    const inst = new ActorInstance(this.def(slot), {
      nats: buildConfig({ nats: { servers: this.pc.urls } }).nats,
      runtime: FAST_RUNTIME,
      storage: buildConfig({ storage: { defaultReplicas: 3 } }).storage,
      health: buildConfig({}).health,
      logger: this.logger.child({ slot }),
    });
    this.actors.set(slot, inst);
    try {
      await bounded(inst.start(), 60_000, `start of ${slot}`);
    } catch (e) {
      await inst.kill().catch(() => undefined);
      this.actors.set(slot, undefined);
      throw e;
    }
  }

  async killActor(slot: ActorSlot): Promise<void> {
    const a = this.actors.get(slot);
    this.actors.set(slot, undefined);
    await a?.kill();
  }

  get servers() {
    return this.pc.cluster.servers;
  }

  async killServer(i: number): Promise<void> {
    await this.servers[i]!.kill("SIGKILL");
  }

  async startServer(i: number): Promise<void> {
    const s = this.servers[i]!;
    if (!s.running) await s.start();
    await this.waitWhole();
  }

  /**
   * Waits until the cluster has one meta leader and that leader sees every
   * peer current and online (a restarted peer counts as offline for a while
   * after /healthz is fine; until then an R3 stream cannot be placed).
   */
  async waitWhole(ms = 60_000): Promise<void> {
    const until = Date.now() + ms;
    const leader = await this.pc.cluster.waitReady(ms);
    let last = "";
    while (Date.now() < until) {
      try {
        const j = await this.pc.cluster.server(leader).monitor<{ meta_cluster?: { replicas?: Array<{ name: string; current: boolean; offline?: boolean }> } }>("/jsz");
        const peers = j.meta_cluster?.replicas ?? [];
        last = JSON.stringify(peers);
        // Every peer the leader lists is current and online (a peer it does
        // not list at all is not waited for: seen for minutes at a start on
        // a busy machine; a bucket that cannot be placed then is retried).
        if (peers.length >= 1 && peers.every((p) => p.current && !p.offline)) return;
      } catch (e) {
        last = String(e);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the meta leader ${leader} did not see every peer current within ${ms} ms: ${last}`);
  }

  isolate(i: number, clients: boolean): void {
    this.pc.isolate(this.servers[i]!.name, { clients });
  }

  heal(): void {
    this.pc.healAll();
  }

  /** Undoes every fault: links healed, servers and actors running, a meta leader elected. */
  async settle(): Promise<void> {
    this.heal();
    for (const s of this.servers) if (!s.running) await s.start();
    await this.waitWhole();
    for (const slot of ACTOR_SLOTS) if (!this.actors.get(slot)) await this.startActor(slot);
  }

  /**
   * Waits until the replicator's events consumer on the bucket has nothing
   * pending or unacknowledged, then reads every event of the bucket from
   * SHOAL_EVENTS. Bounded by `ms`.
   */
  async eventsOf(bucket: string, ms = 90_000): Promise<ObjectEvent[]> {
    const until = Date.now() + ms;
    const stream = objectStoreStream(bucket);
    let caughtUp = false;
    let last = "";
    // Every server agrees on both streams first: right after a heal a stale
    // leader answers stream and consumer info from its old state
    // (test/cluster/stale-leader.test.ts), which made this read stop short.
    await this.agreed([stream, EVENTS_STREAM], Math.max(1000, until - Date.now()));
    // The replicator has caught up when its consumer has acknowledged the
    // bucket's last metadata message — not when it reports nothing pending:
    // a consumer created a moment ago reported num_pending 0 with nothing
    // delivered although the stream held a matching message (measured: 1 of
    // 25 fresh buckets), and the soak's only failed round (seed 887495813,
    // "0 events in all" right after a put) was that.
    const lastMeta = (await leaderGet(this.jsm, stream, { last_by_subj: metaSubjectAll(objectStoreName(bucket)) }))?.seq ?? 0;
    while (Date.now() < until) {
      try {
        const ci = await this.jsm.consumers.info(stream, EVENTS_DURABLE);
        last = `pending ${ci.num_pending}, unacked ${ci.num_ack_pending}, acknowledged up to ${ci.ack_floor.stream_seq} of ${lastMeta}`;
        if (ci.num_pending === 0 && ci.num_ack_pending === 0 && ci.ack_floor.stream_seq >= lastMeta) {
          caughtUp = true;
          break;
        }
      } catch (e) {
        last = String(e);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!caughtUp) throw new Error(`the replicator did not catch up with ${bucket} in ${ms} ms (${last})`);
    // The reading itself is retried whole (this inspection connection may be
    // moving between servers after a fault), within the same deadline.
    for (;;) {
      try {
        return await bounded(this.readEvents(bucket), Math.max(1000, until - Date.now()), `reading the events of ${bucket}`);
      } catch (e) {
        if (Date.now() >= until) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /**
   * Waits until every server reports the same leader and the same last
   * sequence for each stream (from its own monitoring port), bounded by `ms`.
   */
  async agreed(streams: readonly string[], ms = 60_000): Promise<void> {
    const until = Date.now() + ms;
    let last = "";
    while (Date.now() < until) {
      try {
        const views = await Promise.all(
          this.servers.map(async (s) => {
            const j = await s.monitor<{ account_details?: Array<{ stream_detail?: Array<{ name: string; cluster?: { leader?: string }; state?: { last_seq: number } }> }> }>("/jsz?accounts=true&streams=true");
            const d = (j.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
            return streams.map((n) => {
              const x = d.find((y) => y.name === n);
              return `${n}:${x?.cluster?.leader ?? "?"}@${x?.state?.last_seq ?? "?"}`;
            });
          }),
        );
        last = views.map((v) => v.join(",")).join(" | ");
        if (views.every((v) => v.join() === views[0]!.join()) && !views[0]!.some((x) => x.includes("?"))) return;
      } catch (e) {
        last = String(e);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the servers did not agree on ${streams.join(", ")} within ${ms} ms: ${last}`);
  }

  private async readEvents(bucket: string): Promise<ObjectEvent[]> {
    const js = jetstream(this.inspect);
    const info = await this.jsm.streams.info(EVENTS_STREAM, { subjects_filter: eventSubject(bucket) });
    const want = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    const consumer = await js.consumers.get(EVENTS_STREAM, { filter_subjects: eventSubject(bucket), deliver_policy: DeliverPolicy.All });
    const out: ObjectEvent[] = [];
    for (let i = 0; out.length < want; i++) {
      if (i > 100) throw new Error(`read ${out.length} of ${want} events of ${bucket}`);
      const batch = await consumer.fetch({ max_messages: 500, expires: 2000 });
      for await (const m of batch) out.push(m.json<ObjectEvent>());
    }
    return out;
  }
}
