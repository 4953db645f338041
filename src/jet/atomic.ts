/**
 * Atomic batch publish (nats-server 2.12, stream `allow_atomic`): up to 1000
 * messages, each with its own expectations, stored all or none.
 *
 * Written on the wire protocol rather than `js.startBatch` of
 * @nats-io/jetstream 3.4, because that client (measured):
 * - drops `expect` given to `Batch.add` (only the headers are sent), so a
 *   per-message expectation in the middle of a batch silently never reaches
 *   the server;
 * - waits for a reply to the first message (two round trips per batch; the
 *   server needs only the commit to be a request);
 * - throws a plain Error ("batch didn't contain number of published
 *   messages") for every rejected batch, losing the server's error code.
 * Here only the commit is a request, and a rejection is a JetStreamApiError
 * with the server's code (classified in ./errors.ts).
 *
 * Server answers measured on 2.15.1: an expectation that fails anywhere →
 * 10071 and nothing stored; stream without allow_atomic → 10174; a missing
 * batch sequence → 10176; `Nats-Rollup: all` → 10111 (`sub` is accepted and
 * rolls up that subject); a Nats-Msg-Id already in the duplicate window →
 * 10201 for the whole batch (so a retried batch whose first commit landed is
 * refused, not silently accepted); more than 1000 messages → refused. A
 * committed batch occupies consecutive stream sequences ending at the
 * commit's `seq`.
 */
import { nuid, type NatsConnection, type MsgHdrs } from "@nats-io/nats-core";
import { JetStreamApiError, type PubAck } from "@nats-io/jetstream";
import { toJetError } from "./errors.ts";
import { H } from "./headers.ts";
import { buildHeaders, type HeaderOptions } from "./publish.ts";

/** The server's limit on messages in one atomic batch (nats-server 2.12+ default). */
export const ATOMIC_MAX_MSGS = 1000;

/** Codes of a refused atomic batch (nats-server errors.json), as measured above. */
export const ATOMIC_CODES = Object.freeze({
  Disabled: 10174,
  Incomplete: 10176,
  RollupAllInvalid: 10111,
  DuplicateMsgId: 10201,
});

export interface BatchMsg extends HeaderOptions {
  subject: string;
  data?: Uint8Array | string;
  headers?: MsgHdrs;
  msgId?: string;
  expectLastSubjectSeq?: number;
  ttlMs?: number | "never";
  rollup?: "sub";
}

export interface AtomicAck extends PubAck {
  batch: string;
  count: number;
  /** Stream sequence of the batch's first message (the batch is consecutive). */
  firstSeq: number;
}

export async function publishAtomic(nc: NatsConnection, msgs: readonly BatchMsg[], o: { timeoutMs: number }): Promise<AtomicAck> {
  if (msgs.length === 0) throw new RangeError("an atomic batch needs at least one message");
  if (msgs.length > ATOMIC_MAX_MSGS) throw new RangeError(`an atomic batch holds at most ${ATOMIC_MAX_MSGS} messages (got ${msgs.length})`);
  const id = nuid.next();
  const last = msgs.length - 1;
  let reply;
  try {
    for (let i = 0; i <= last; i++) {
      const m = msgs[i]!;
      const h = buildHeaders(m, true);
      h.set(H.batchId, id);
      h.set(H.batchSeq, String(i + 1));
      if (i < last) {
        nc.publish(m.subject, m.data ?? new Uint8Array(0), { headers: h });
      } else {
        h.set(H.batchCommit, "1");
        reply = await nc.request(m.subject, m.data ?? new Uint8Array(0), { headers: h, timeout: o.timeoutMs });
      }
    }
  } catch (e) {
    throw toJetError(e, "atomic batch", { write: true });
  }
  let r: Partial<AtomicAck> & { error?: { code: number; err_code: number; description: string } };
  try {
    r = reply!.json();
  } catch (e) {
    throw toJetError(new Error("atomic batch: the commit's reply is not a JetStream ack", { cause: e }), "atomic batch");
  }
  if (r.error) throw toJetError(new JetStreamApiError(r.error), "atomic batch", { write: true });
  if (r.count !== msgs.length || typeof r.seq !== "number" || typeof r.stream !== "string") {
    throw toJetError(new Error(`atomic batch ack does not match: ${msgs.length} sent, ack ${JSON.stringify(r)}`), "atomic batch");
  }
  return { stream: r.stream, seq: r.seq, duplicate: false, domain: r.domain ?? "", batch: id, count: r.count, firstSeq: r.seq - r.count + 1 } as AtomicAck;
}
