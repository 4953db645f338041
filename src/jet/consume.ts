/**
 * Consuming a durable pull consumer until it is gone; dropping a one-pass
 * ordered consumer once done with it.
 *
 * `consume()` of @nats-io/jetstream 3.4.0 with `abort_on_missing_resource`
 * ends when the server says "consumer deleted" to a pending pull, but not
 * when the consumer is removed while no pull is pending: the next pull is
 * then answered "no responders" (nothing serves a missing consumer's pull
 * subject), and consume() pulls again at once, for ever — measured here,
 * ~30 000 pulls a second, each answered so, with the iterator neither
 * ending nor failing (nats-io/nats.js#221, unmerged). `consumeUntilGone`
 * ends the iterator on any of the statuses that say the consumer or its
 * stream is not there, "no responders" included; the caller's probe says
 * so, and its supervisor opens the consumer again (during a consumer
 * leader election "no responders" can be transient, and that reopening is
 * then all it costs). Test: test/integration/jet-consume.test.ts.
 */
import type { ConsumeOptions, ConsumerMessages, JetStreamClient } from "@nats-io/jetstream";

const GONE = new Set(["consumer_deleted", "consumer_not_found", "stream_not_found", "no_responders"]);

export interface Consuming {
  msgs: ConsumerMessages;
  /** Whether the iterator ended because the consumer (or its stream) was gone. */
  gone: () => boolean;
}

export async function consumeUntilGone(js: JetStreamClient, stream: string, durable: string, opts: ConsumeOptions): Promise<Consuming> {
  const msgs = await (await js.consumers.get(stream, durable)).consume({ ...opts, abort_on_missing_resource: true });
  let gone = false;
  void (async () => {
    for await (const s of msgs.status()) {
      if (GONE.has(s.type)) {
        gone = true;
        await msgs.close().catch(() => undefined);
        return;
      }
    }
  })().catch(() => undefined);
  return { msgs, gone: () => gone };
}

/**
 * Deletes a one-pass ordered consumer on its server once its reader is done
 * with it, without waiting for the answer. Closing the iterator of a
 * @nats-io/jetstream 3.4 ordered consumer, or letting a fetch end, leaves
 * the consumer on the server until its inactivity threshold — 5 minutes
 * (nats.js's ordered-consumer default) — and nats-server 2.15 refuses a
 * stream's 1001st consumer unless the stream sets a limit of its own
 * (`default_max_consumers`, 1000; a stream's -1 means that default, not
 * unlimited). Measured: the 1001st direct PUT into one bucket within 5
 * minutes failed ("maximum consumers limit reached") while every commit's
 * read-back left its consumer behind. Not awaited: a consumer whose server
 * does not answer is left to its threshold, as before; one never created
 * (its creation failed) has nothing to delete.
 */
export function dropOrdered(c: { delete(): Promise<unknown> } | undefined): void {
  if (!c) return;
  try {
    void c.delete().catch(() => undefined);
  } catch {
    // never created on the server: nothing to delete
  }
}
