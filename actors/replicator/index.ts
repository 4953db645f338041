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
 *   into stream `SHOAL_EVENTS`, with `Nats-Msg-Id: <stream>:<seq>`. A message
 *   redelivered after a crash (published, not yet acked) is published again
 *   with the same id and dropped by JetStream's duplicate window (1 h), so
 *   each change yields exactly one event. Events are never a second write made
 *   by the storage path: they are derived from the commit log itself.
 *
 * Bucket replication rules and anti-entropy are not implemented yet.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { setTimeout as sleep } from "node:timers/promises";
import { defineActor, type ActorContext } from "../../src/runtime/index.ts";
import { backoffDelay } from "../../src/runtime/backoff.ts";
import { EVENTS_STREAM, KV as KV_NAMES, bucketToken, eventSubject, metaSubjectAll } from "../../src/subjects/index.ts";
import { storeRef } from "../../src/store/bucket.ts";
import { openRegistry } from "../../src/store/registry.ts";
import { publishOnce } from "../../src/store/writer.ts";
import { eventFor, eventMsgId } from "./logic.ts";

export const EVENTS_DURABLE = "shoal-events";
/** How long a duplicate event id is remembered. */
export const EVENTS_DUPLICATE_WINDOW_MS = 3_600_000;
/** How long events are kept. */
export const EVENTS_MAX_AGE_MS = 7 * 86_400_000;

export async function ensureEventsStream(ctx: Pick<ActorContext, "jsm" | "storage">): Promise<void> {
  const config = {
    name: EVENTS_STREAM,
    subjects: ["shoal.events.>"],
    duplicate_window: EVENTS_DUPLICATE_WINDOW_MS * 1_000_000,
    max_age: EVENTS_MAX_AGE_MS * 1_000_000,
    num_replicas: ctx.storage.defaultReplicas,
    allow_direct: true,
    description: "Shoal object-change events (docs/events.md)",
  };
  try {
    await ctx.jsm.streams.info(EVENTS_STREAM);
  } catch {
    try {
      await ctx.jsm.streams.add(config);
    } catch (e) {
      // another instance created it meanwhile
      await ctx.jsm.streams.info(EVENTS_STREAM).catch(() => Promise.reject(e));
    }
  }
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
  const consumer = await ctx.js.consumers.get(store.stream, EVENTS_DURABLE);
  const msgs = await consumer.consume({ max_messages: 1 });
  const stop = () => void msgs.close().catch(() => undefined);
  signal.addEventListener("abort", stop, { once: true });
  try {
    for await (const m of msgs) {
      if (signal.aborted) break;
      await publishEvent(ctx, store.stream, bucketToken(bucket), m, signal);
    }
  } finally {
    signal.removeEventListener("abort", stop);
    stop();
  }
}

async function publishEvent(ctx: ActorContext, stream: string, token: string, m: JsMsg, signal: AbortSignal): Promise<void> {
  const ev = eventFor(stream, m.subject, m.seq, Math.floor(m.info.timestampNanos / 1e6), m.data, token);
  if (ev) {
    await publishOnce(ctx.js, eventSubject(ev.event.bucket, ev.kind), JSON.stringify(ev.event), eventMsgId(stream, m.seq), { attemptMs: 2000, deadlineMs: 30_000, signal });
  }
  // Acked only after the event is stored: a crash in between redelivers the
  // message, and the same Nats-Msg-Id makes the second publish a no-op.
  await m.ackAck();
}

export const replicator = defineActor({
  kind: "replicator",
  description: "Shoal object-change events (and, later, bucket replication)",
  contract: {
    consumes: [`$O.<bucket>.M.> (durable consumer ${EVENTS_DURABLE} per bucket)`, `$KV.${KV_NAMES.buckets}.> (watch: buckets come and go)`],
    publishes: ["shoal.events.<bucket>.<created|deleted> (stream SHOAL_EVENTS)"],
    kv: [KV_NAMES.buckets],
  },
  start: async (ctx: ActorContext) => {
    await ensureEventsStream(ctx);
    const registry: KV = await openRegistry(ctx.js);
    const pumps = new Map<string, AbortController>();

    /** Keeps one bucket's pump running (restarting it with backoff) until its controller aborts. */
    const supervise = async (bucket: string, ac: AbortController) => {
      for (let failures = 0; !ac.signal.aborted; ) {
        try {
          await pumpBucket(ctx, bucket, ac.signal);
          failures = 0;
        } catch (e) {
          if (ac.signal.aborted) break;
          failures++;
          const delay = backoffDelay(failures, { baseMs: 200, maxMs: 5000, jitter: 0.5 });
          ctx.log.warn({ err: e, bucket, failures, retryInMs: delay }, "event pump failed; restarting");
          await sleep(delay, undefined, { signal: ac.signal }).catch(() => undefined);
        }
      }
    };
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

    return {
      loops: [{ name: "buckets", run: watchBuckets }],
      close: () => {
        for (const b of [...pumps.keys()]) stopPump(b);
      },
    };
  },
});
