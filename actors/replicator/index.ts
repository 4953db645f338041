/**
 * replicator — propagates committed changes. Its first product is the
 * object-change event stream.
 *
 * Consumes: each registered bucket's commit log — the metadata subjects
 *   `$O.<bucket>.M.>` of `OBJ_<bucket>` — through one durable pull consumer per
 *   bucket, `shoal-events` (explicit acks, at most one unacknowledged message,
 *   so changes are published in commit order even with several replicator
 *   instances sharing the consumer). Buckets are found by watching KV
 *   `shoal_buckets`; buckets created later are picked up without a restart.
 * Publishes: one event per change on `shoal.events.<bucket>.<created|deleted>`
 *   into stream `SHOAL_EVENTS`, with `Nats-Msg-Id: <stream>:<incarnation>:<seq>`
 *   (the incarnation: the bucket stream's creation, src/store/bucket.ts, so a
 *   bucket deleted and created again never reuses an id). A message
 *   redelivered after a crash (published, not yet acked) is published again
 *   with the same id and dropped by JetStream's duplicate window (1 h), so
 *   each change yields exactly one event. Events are never a second write made
 *   by the storage path: they are derived from the commit log itself.
 *
 * Replication: rules in KV `shoal_replication` (`rule.<id>`), watched. Per
 *   rule, a durable consumer `shoal-repl-<id>` on the source bucket's commit
 *   log (one unacked message: commit order per key) applies each change to
 *   the target bucket — on this cluster or another one (its own connection) —
 *   streamed and digest-verified, idempotent (copies carry `Shoal-Source`),
 *   acknowledged only once applied, so a crash resumes where it stopped.
 *   Progress goes to `status.<id>`. Anti-entropy (src/store/replication.ts
 *   `scrub`) runs every hour per rule and on request:
 *   `shoal.ctl.replicator.scrub` `{"id"}` → the report.
 *
 * Lifecycle: every hour (and on request, `shoal.ctl.replicator.lifecycle`
 *   `{}` → the report), the buckets' lifecycle rules (KV
 *   `shoal_bucket_settings`) are applied by src/store/lifecycle.ts: expired
 *   objects are deleted with compare-and-set, old uploads aborted. Every
 *   instance runs the pass; it is idempotent.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { setTimeout as sleep } from "node:timers/promises";
import { defineActor, type ActorContext, type Handler } from "../../src/runtime/index.ts";
import { keepRunning } from "../../src/runtime/backoff.ts";
import { EVENTS_STREAM, KV as KV_NAMES, bucketToken, eventSubject, eventsStreamSubject, kvSubjectAll, metaSubjectAll } from "../../src/subjects/index.ts";
import { storeRef } from "../../src/store/bucket.ts";
import { openRegistry } from "../../src/store/registry.ts";
import { sharedStream } from "../../src/runtime/replicas.ts";
import type { Jet, StoreRef } from "../../src/store/types.ts";
import { consumeUntilGone, publish } from "../../src/jet/index.ts";
import { applyChange, listRules, openReplication, replDurable, ruleKey, scrub, statusKey, type ReplicationRule, type ReplicationStatus, type ScrubReport } from "../../src/store/replication.ts";
import { storeInfo, storeIncarnation } from "../../src/store/bucket.ts";
import { connectNats } from "../../src/connect.ts";
import { buildConfig } from "../../src/config.ts";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { ShoalError } from "../../src/errors/index.ts";
import { controlSubject } from "../../src/subjects/index.ts";
import { parseJsonObject, field, onlyFields } from "../../src/subjects/payload.ts";
import { eventFor, eventMsgId } from "./logic.ts";
import { runLifecycle } from "../../src/store/lifecycle.ts";
import { BucketSettings } from "../../src/store/bucketsettings.ts";
import { ShoalClient } from "../../src/client/index.ts";

/** How often lifecycle rules are applied. */
export const LIFECYCLE_INTERVAL_MS = 3_600_000;

export const EVENTS_DURABLE = "shoal-events";
/** How long a duplicate event id is remembered. */
export const EVENTS_DUPLICATE_WINDOW_MS = 3_600_000;
/** How long events are kept. */
export const EVENTS_MAX_AGE_MS = 7 * 86_400_000;

export async function ensureEventsStream(ctx: Pick<ActorContext, "jsm">): Promise<void> {
  // R3 on a cluster (events must outlive a server), R1 on a single server
  await sharedStream(ctx.jsm, {
    name: EVENTS_STREAM,
    subjects: [eventsStreamSubject()],
    duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * 1_000_000,
    max_age: EVENTS_MAX_AGE_MS * 1_000_000,
    allow_direct: true,
    description: "Shoal object-change events (docs/events.md)",
  });
}

/** Publishes the events of one bucket's commit log until `signal` aborts or the bucket goes. */
async function pumpBucket(ctx: ActorContext, bucket: string, signal: AbortSignal): Promise<void> {
  const store = storeRef(bucket);
  try {
    await ctx.jsm.consumers.info(store.stream, EVENTS_DURABLE);
  } catch {
    await ctx.jsm.consumers
      .add(store.stream, {
        durable_name: EVENTS_DURABLE,
        filter_subject: metaSubjectAll(store.name),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: 1,
        // a crashed instance holds the bucket's next event this long at most
        ack_wait: 2_000_000_000,
        description: "replicator: object-change events",
      })
      .catch(async (e: unknown) => {
        await ctx.jsm.consumers.info(store.stream, EVENTS_DURABLE).catch(() => Promise.reject(e));
      });
  }
  const incarnation = await consumerIncarnation(ctx, store, EVENTS_DURABLE);
  // A consumer that turns out not to exist (created through a server that was
  // cut off from its peers, then healed: seen in test/cluster/model.test.ts;
  // or removed by hand) ends the pump instead of being waited on forever;
  // the supervisor creates it again. Pulls of 10 s (idle heartbeats every
  // 5 s): a consumer that vanishes without a word is noticed after two missed
  // heartbeats, ~10 s, not the ~30 s of the client's default 30 s pulls (one
  // small pull per idle bucket every 10 s is the cost).
  const { msgs, gone } = await consumeUntilGone(ctx.js, store.stream, EVENTS_DURABLE, { max_messages: 1, expires: PUMP_PULL_MS });
  const stop = () => void msgs.close().catch(() => undefined);
  signal.addEventListener("abort", stop, { once: true });
  try {
    for await (const m of msgs) {
      if (signal.aborted) break;
      await publishEvent(ctx, store.stream, incarnation, bucketToken(bucket), m, signal);
    }
    if (gone() && !signal.aborted) throw new ShoalError("ServiceUnavailable", `the events consumer of ${store.stream} is gone (removed, or its bucket deleted or re-created)`);
  } finally {
    signal.removeEventListener("abort", stop);
    stop();
  }
}

/** A pump that ran this long before failing starts its backoff over. */
export const PUMP_HEALTHY_MS = 30_000;

/** How long each pull of the replicator's pumps waits (its idle heartbeat is half of it). */
export const PUMP_PULL_MS = 10_000;

/**
 * The incarnation of the stream a durable consumer belongs to: the stream's,
 * read before and after the consumer's, so that a stream replaced in between
 * (deleted and created again, which deletes the consumer with it) is caught
 * and the pump starts over on the new one.
 */
async function consumerIncarnation(ctx: ActorContext, store: StoreRef, durable: string): Promise<string> {
  const before = (await storeIncarnation(ctx.jsm, store)).incarnation;
  await ctx.jsm.consumers.info(store.stream, durable);
  const after = (await storeIncarnation(ctx.jsm, store)).incarnation;
  if (before !== after) throw new ShoalError("ServiceUnavailable", `stream ${store.stream} was replaced while its consumer was opened`);
  return after;
}

async function publishEvent(ctx: ActorContext, stream: string, incarnation: string, token: string, m: JsMsg, signal: AbortSignal): Promise<void> {
  const ev = eventFor(stream, incarnation, m.subject, m.seq, Math.floor(m.info.timestampNanos / 1e6), m.data, token);
  if (ev) {
    await publish(ctx.js, eventSubject(ev.event.bucket, ev.kind), JSON.stringify(ev.event), { msgId: eventMsgId(stream, incarnation, m.seq), attemptMs: 2000, deadlineMs: 30_000, signal });
  }
  // Acked only after the event is stored: a crash in between redelivers the
  // message, and the same Nats-Msg-Id makes the second publish a no-op.
  await m.ackAck();
}

/** Hourly anti-entropy per rule. */
export const SCRUB_INTERVAL_MS = 3_600_000;

/** The target side of a rule: this cluster's connection, or a connection of its own to another cluster. */
async function targetOf(ctx: ActorContext, rule: ReplicationRule): Promise<{ jet: Jet; close: () => Promise<void> }> {
  if (!rule.target.servers?.length) return { jet: { nc: ctx.nc, js: ctx.js, jsm: ctx.jsm }, close: async () => undefined };
  const cfg = buildConfig({ nats: { servers: rule.target.servers, user: rule.target.user, pass: rule.target.pass, creds: rule.target.creds } }).nats;
  const nc: NatsConnection = await connectNats(cfg, { name: `shoal-replicator-${ctx.id}-${rule.id}` });
  return { jet: { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) }, close: () => nc.close().catch(() => undefined) };
}

/** Applies a rule's changes in commit order until `signal` aborts. */
async function pumpRule(ctx: ActorContext, kv: KV, rule: ReplicationRule, signal: AbortSignal): Promise<void> {
  const src = storeRef(rule.source);
  const target = await targetOf(ctx, rule);
  const dst = { jet: target.jet, store: storeRef(rule.target.bucket) };
  const status: ReplicationStatus = { v: 1, applied: 0, skipped: 0, lastSeq: 0, lastApplied: null, lastError: null, updated: new Date().toISOString() };
  let lastWrite = 0;
  const save = async (force = false) => {
    if (!force && Date.now() - lastWrite < 500) return;
    lastWrite = Date.now();
    status.updated = new Date().toISOString();
    await kv.put(statusKey(rule.id), JSON.stringify(status)).catch(() => undefined);
  };
  try {
    await storeInfo(target.jet.jsm, dst.store); // the target bucket must exist (NoSuchBucket otherwise)
    const durable = replDurable(rule.id);
    try {
      await ctx.jsm.consumers.info(src.stream, durable);
    } catch {
      await ctx.jsm.consumers
        .add(src.stream, {
          durable_name: durable,
          filter_subject: metaSubjectAll(src.name),
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          max_ack_pending: 1,
          // short, so a crashed instance's message is redelivered quickly; long copies call working()
          ack_wait: 5_000_000_000,
          description: `replicator: ${rule.source} -> ${rule.target.bucket}${rule.target.servers?.length ? " (remote)" : ""}`,
        })
        .catch(async (e: unknown) => void (await ctx.jsm.consumers.info(src.stream, durable).catch(() => Promise.reject(e))));
    }
    const incarnation = await consumerIncarnation(ctx, src, durable);
    const { msgs, gone } = await consumeUntilGone(ctx.js, src.stream, durable, { max_messages: 1, expires: PUMP_PULL_MS });
    const stop = () => void msgs.close().catch(() => undefined);
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const m of msgs) {
        if (signal.aborted) break;
        const working = setInterval(() => m.working(), 2000); // long copies keep the message
        try {
          const d = await applyChange({ jsm: ctx.jsm, store: src, incarnation }, dst, m, signal);
          if (d === "skip") status.skipped++;
          else status.applied++;
        } finally {
          clearInterval(working);
        }
        await m.ackAck();
        status.lastSeq = m.seq;
        status.lastApplied = new Date().toISOString();
        status.lastError = null;
        await save();
      }
      if (gone() && !signal.aborted) throw new ShoalError("ServiceUnavailable", `the replication consumer of ${src.stream} is gone (source bucket deleted or re-created)`);
    } finally {
      signal.removeEventListener("abort", stop);
      stop();
    }
  } catch (e) {
    status.lastError = e instanceof Error ? e.message : String(e);
    throw e;
  } finally {
    await save(true);
    await target.close();
  }
}

export async function scrubRule(ctx: ActorContext, rule: ReplicationRule, signal?: AbortSignal): Promise<ScrubReport> {
  const target = await targetOf(ctx, rule);
  try {
    return await scrub({ js: ctx.js, jsm: ctx.jsm, store: storeRef(rule.source) }, { jet: target.jet, store: storeRef(rule.target.bucket) }, signal);
  } finally {
    await target.close();
  }
}

/** The control commands every instance hears; the contract's `serves` and the registered controls are both built from it. */
const CONTROLS = { scrub: controlSubject("replicator", "scrub"), lifecycle: controlSubject("replicator", "lifecycle") } as const;

export const replicator = defineActor({
  kind: "replicator",
  description: "Shoal object-change events (and, later, bucket replication)",
  contract: {
    consumes: [`${metaSubjectAll("*")} (durable consumer ${EVENTS_DURABLE} per bucket)`, `${kvSubjectAll(KV_NAMES.buckets)} (watch: buckets come and go)`],
    publishes: [`${eventSubject()} (<bucket>.<created|deleted>, stream ${EVENTS_STREAM})`, "replicated objects into target buckets (this or another cluster)"],
    serves: Object.values(CONTROLS),
    kv: [KV_NAMES.buckets, KV_NAMES.replication, KV_NAMES.bucketSettings],
  },
  start: async (ctx: ActorContext) => {
    await ensureEventsStream(ctx);
    const registry: KV = await openRegistry(ctx.js, ctx.jsm);
    const pumps = new Map<string, AbortController>();

    /** Keeps one bucket's pump running (restarting it with backoff) until its controller aborts. */
    const supervise = (bucket: string, ac: AbortController) =>
      keepRunning(() => pumpBucket(ctx, bucket, ac.signal), {
        signal: ac.signal,
        backoff: { baseMs: 200, maxMs: 5000, jitter: 0.5 },
        healthyMs: PUMP_HEALTHY_MS,
        failed: (e, failures, retryInMs) => ctx.log.warn({ err: e, bucket, failures, retryInMs }, "event pump failed; restarting"),
      });
    const start = (bucket: string) => {
      if (pumps.has(bucket) || ctx.signal.aborted) return;
      const ac = new AbortController();
      // the instance stopping (or crashing) stops every pump
      ctx.signal.addEventListener("abort", () => ac.abort(), { once: true });
      pumps.set(bucket, ac);
      void supervise(bucket, ac);
    };
    const stopPump = (bucket: string) => {
      pumps.get(bucket)?.abort();
      pumps.delete(bucket);
    };

    const watchBuckets = async () => {
      const w = await registry.watch({ key: ">" });
      const stop = () => w.stop();
      ctx.signal.addEventListener("abort", stop, { once: true });
      try {
        for await (const e of w) {
          if (e.operation === "PUT") start(e.key);
          else stopPump(e.key);
        }
      } finally {
        ctx.signal.removeEventListener("abort", stop);
      }
    };

    // --- replication rules -------------------------------------------------------
    const rulesKv: KV = await openReplication(ctx.js, ctx.jsm);
    const rulePumps = new Map<string, AbortController>();
    const superviseRule = (rule: ReplicationRule, ac: AbortController) =>
      keepRunning(() => pumpRule(ctx, rulesKv, rule, ac.signal), {
        signal: ac.signal,
        backoff: { baseMs: 200, maxMs: 10_000, jitter: 0.5 },
        healthyMs: PUMP_HEALTHY_MS,
        failed: (e, failures, retryInMs) => ctx.log.warn({ err: e, rule: rule.id, failures, retryInMs }, "replication pump failed; restarting"),
      });
    const watchRules = async () => {
      const w = await rulesKv.watch({ key: "rule.*" });
      const stop = () => w.stop();
      ctx.signal.addEventListener("abort", stop, { once: true });
      try {
        for await (const e of w) {
          const id = e.key.slice("rule.".length);
          rulePumps.get(id)?.abort();
          rulePumps.delete(id);
          if (e.operation !== "PUT" || ctx.signal.aborted) continue;
          const ac = new AbortController();
          ctx.signal.addEventListener("abort", () => ac.abort(), { once: true });
          rulePumps.set(id, ac);
          void superviseRule(e.json<ReplicationRule>(), ac);
        }
      } finally {
        ctx.signal.removeEventListener("abort", stop);
      }
    };
    const scrubLoop = async () => {
      while (!ctx.signal.aborted) {
        await sleep(SCRUB_INTERVAL_MS * (0.8 + 0.4 * Math.random()), undefined, { signal: ctx.signal }).catch(() => undefined);
        if (ctx.signal.aborted) break;
        for (const rule of await listRules(rulesKv)) {
          try {
            const r = await scrubRule(ctx, rule, ctx.signal);
            if (r.copied + r.deleted > 0) ctx.log.info({ rule: rule.id, ...r }, "anti-entropy repaired the target");
          } catch (e) {
            ctx.log.warn({ err: e, rule: rule.id }, "anti-entropy failed; next round retries");
          }
        }
      }
    };
    const scrubControl = async (req: { data: Uint8Array }) => {
      const o = parseJsonObject(req.data);
      onlyFields(o, ["v", "id"]);
      const id = field.string(o, "id");
      const e = await rulesKv.get(ruleKey(id));
      if (!e || e.operation !== "PUT") throw new ShoalError("InvalidArgument", `no replication rule ${JSON.stringify(id)}`);
      return { v: 1, id, ...(await scrubRule(ctx, e.json<ReplicationRule>(), ctx.signal)) };
    };

    // --- lifecycle ----------------------------------------------------------------
    const settings = new BucketSettings(ctx.nc);
    const lifecyclePass = () => runLifecycle({ client: new ShoalClient(ctx.nc, { direct: false }), jet: { nc: ctx.nc, js: ctx.js, jsm: ctx.jsm }, settings, now: new Date(), log: ctx.log, signal: ctx.signal });
    const lifecycleLoop = async () => {
      while (!ctx.signal.aborted) {
        await sleep(LIFECYCLE_INTERVAL_MS * (0.8 + 0.4 * Math.random()), undefined, { signal: ctx.signal }).catch(() => undefined);
        if (ctx.signal.aborted) break;
        try {
          const r = await lifecyclePass();
          if (r.expired + r.aborted > 0) ctx.log.info(r, "lifecycle rules applied");
        } catch (e) {
          ctx.log.warn({ err: e }, "lifecycle pass failed; the next one retries");
        }
      }
    };
    const lifecycleControl = async (req: { data: Uint8Array }) => {
      onlyFields(parseJsonObject(req.data.length ? req.data : new TextEncoder().encode("{}")), ["v"]);
      return { v: 1, ...(await lifecyclePass()) };
    };

    return {
      loops: [
        { name: "buckets", run: watchBuckets },
        { name: "rules", run: watchRules },
        { name: "scrub", run: scrubLoop },
        { name: "lifecycle", run: lifecycleLoop },
      ],
      controls: Object.entries({ scrub: scrubControl, lifecycle: lifecycleControl } satisfies Record<keyof typeof CONTROLS, Handler>).map(([k, handler]) => ({ subject: CONTROLS[k as keyof typeof CONTROLS], handler })),
      close: () => {
        for (const b of [...pumps.keys()]) stopPump(b);
        for (const ac of rulePumps.values()) ac.abort();
      },
    };
  },
});
