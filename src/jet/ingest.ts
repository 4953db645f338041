/**
 * Fast-ingest batches (nats-server 2.14, stream `allow_batched`): many
 * messages published without a request each, paced by the server's
 * flow-control acks (`ackInterval` messages per ack, at most
 * `maxOutstandingAcks` windows unacknowledged), ending with one ack for the
 * whole batch. Gaps are refused (`allowGaps: false`): a lost message aborts
 * the batch instead of leaving a hole in an object.
 *
 * Not atomic: every message is stored as it arrives. A batch that stops
 * half way (client gone, server abandons it after 10 s idle) leaves the
 * messages it got — callers give such messages a TTL or sweep them.
 *
 * `startFastIngest` is only exported from `@nats-io/jetstream/internal` in
 * 3.4 (stock @nats-io/obj uses it the same way for `allowBatched` stores).
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { startFastIngest } from "@nats-io/jetstream/internal";
import type { BatchAck } from "@nats-io/jetstream";
import { toJetError } from "./errors.ts";
import { buildHeaders, type HeaderOptions } from "./publish.ts";

export interface IngestOptions {
  /** Wait for one flow-control or final ack before giving up. */
  timeoutMs: number;
  /** Messages per flow-control ack requested from the server (it may change it). Default 10. */
  ackInterval?: number;
  /** Unacknowledged windows allowed (1–3). Default 2. */
  maxOutstandingAcks?: number;
  /** Headers/TTL for every data message (e.g. a chunk TTL for abandoned uploads). */
  each?: HeaderOptions;
  /** A final message stored with the batch's end (e.g. object metadata, with rollup and an expectation). */
  last?: HeaderOptions & { subject: string; data: Uint8Array | string };
  signal?: AbortSignal;
}

export interface IngestResult {
  ack: BatchAck;
  /** Data messages (without `last`). */
  count: number;
  /** Largest number of messages sent and not yet acknowledged, seen by the client: the flow control at work. */
  maxUnacked: number;
}

export async function ingest(nc: NatsConnection, subject: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, o: IngestOptions): Promise<IngestResult> {
  const each = o.each ? buildHeaders(o.each) : undefined;
  const opts = () => ({ timeout: o.timeoutMs, ...(each ? { headers: copy(each) } : {}) });
  let fi: Awaited<ReturnType<typeof startFastIngest>> | undefined;
  let count = 0;
  let maxUnacked = 0;
  try {
    for await (const chunk of source) {
      o.signal?.throwIfAborted();
      if (!fi) {
        fi = await startFastIngest(nc, subject, chunk, {
          allowGaps: false,
          ackInterval: o.ackInterval ?? 10,
          maxOutstandingAcks: o.maxOutstandingAcks ?? 2,
          ...opts(),
        });
      } else {
        const p = await fi.add(subject, chunk, opts());
        maxUnacked = Math.max(maxUnacked, p.batchSeq - p.ackSeq);
      }
      count++;
    }
    o.signal?.throwIfAborted();
    if (!fi) throw new RangeError("a fast-ingest batch needs at least one message");
    const last = o.last;
    const f = fi;
    const ending = last ? f.last(last.subject, last.data, { timeout: o.timeoutMs, headers: buildHeaders(last, true) }) : f.end({ timeout: o.timeoutMs });
    // Measured at R3 on 2.15.1: the final ack sometimes comes on the reply
    // subject of the last data message instead of the end's; the 3.4 client
    // then rejects end() with "batch closed" although the batch committed.
    // The batch's own terminal ack (done()) is the truth; its count is checked.
    const ack = await ending.catch(async (e: unknown) => {
      const a = await f.done().catch(() => undefined);
      if (a === undefined) throw e;
      return a;
    });
    const want = count + (last ? 1 : 0);
    if (ack.count !== want) throw new Error(`fast-ingest batch committed ${ack.count} of ${want} messages`);
    return { ack, count, maxUnacked };
  } catch (e) {
    // The server ends an idle batch after 10 s; ending it now frees it sooner. What was stored stays.
    if (fi) await fi.end({ timeout: Math.min(o.timeoutMs, 1000) }).catch(() => undefined);
    if (e instanceof RangeError || (o.signal?.aborted && e === o.signal.reason)) throw e;
    throw toJetError(e, `fast ingest to ${subject}`, { write: true });
  }
}

function copy(h: NonNullable<ReturnType<typeof buildHeaders>>) {
  return buildHeaders({ headers: h }, true);
}
