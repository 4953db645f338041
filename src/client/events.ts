/**
 * Object-change events (stream SHOAL_EVENTS, written by the replicator) as
 * an async iterator: an ordered ephemeral consumer, or a durable one.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerConfig } from "@nats-io/jetstream";
import { dropOrdered } from "../jet/consume.ts";
import { EVENTS_STREAM, eventSubject } from "../subjects/index.ts";
import type { ObjectEvent } from "../subjects/events.ts";
import type { DeliveredEvent, EventsOptions } from "./types.ts";

export async function* events(nc: NatsConnection, opts: EventsOptions = {}): AsyncGenerator<DeliveredEvent> {
  const js = jetstream(nc);
  const filter = eventSubject(opts.bucket);
  const start: Partial<ConsumerConfig> =
    opts.from instanceof Date
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.from.toISOString() }
      : typeof opts.from === "number"
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.from }
        : opts.from === "all"
          ? { deliver_policy: DeliverPolicy.All }
          : { deliver_policy: DeliverPolicy.New };
  if (opts.durable) {
    // One message at a time, acknowledged once the caller asks for the next
    // one (or stops): nothing is held unacknowledged in a local buffer, so a
    // reader that stops and comes back resumes exactly after what it saw.
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.consumers.info(EVENTS_STREAM, opts.durable);
    } catch {
      await jsm.consumers.add(EVENTS_STREAM, { durable_name: opts.durable, filter_subject: filter, ack_policy: AckPolicy.Explicit, ...start });
    }
    const consumer = await js.consumers.get(EVENTS_STREAM, opts.durable);
    while (!opts.signal?.aborted) {
      const m = await consumer.next({ expires: 1000 });
      if (!m) continue;
      const ev = m.json<ObjectEvent>();
      try {
        if (opts.prefix === undefined || ev.key.startsWith(opts.prefix)) yield { ...ev, seq: m.seq };
      } finally {
        await m.ackAck();
      }
    }
    return;
  }
  const consumer = await js.consumers.get(EVENTS_STREAM, { filter_subjects: filter, ...(start as object) });
  const msgs = await consumer.consume();
  // closed, and deleted on the server (left alone it would stay 5 minutes: src/jet dropOrdered)
  const stop = () => void msgs.close().then(() => dropOrdered(consumer), () => dropOrdered(consumer));
  opts.signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const m of msgs) {
      const ev = m.json<ObjectEvent>();
      if (opts.prefix === undefined || ev.key.startsWith(opts.prefix)) yield { ...ev, seq: m.seq };
    }
  } finally {
    opts.signal?.removeEventListener("abort", stop);
    stop();
  }
}
