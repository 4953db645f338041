/**
 * Consuming a durable pull consumer until it is gone.
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
