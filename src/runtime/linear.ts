/**
 * Linearizable reads on top of JetStream, for the reads that must see every
 * write acknowledged before they started (read-after-write, compare-and-set
 * decisions).
 *
 * Why a leader read is not enough (measured, test/cluster/known-issues.test.ts):
 * a server cut off from its peers keeps believing it leads the streams it
 * led — for seconds, until it notices the lost quorum or hears of the newer
 * term. Meanwhile the others elect a leader and acknowledge writes. Right
 * after the links are healed (and, for clients connected to the cut-off
 * server, during the whole cut) the stale leader answers the JetStream API's
 * leader-only requests (STREAM.MSG.GET, STREAM.INFO) from its old state, and
 * a request takes whichever answer comes first. In the reproduction, right
 * after a heal, the healed server reported itself leader of KV_shoal_multipart
 * with last sequence 65 while the others had leader n1 at 68, in 3 rounds of 9.
 *
 * The barrier: a write can only be acknowledged by a leader with a quorum in
 * the current term. So a reader first publishes an empty message on the
 * stream's barrier subject and takes its acknowledged sequence S; a state
 * that includes S includes every write acknowledged before the read began.
 * Then it asks for what it needs *and* the barrier in one request, answered
 * by one server, and accepts the answer only if that server's barrier is at
 * S or later (else it asks again: the server is catching up).
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { ShoalError } from "../errors/index.ts";

const EMPTY = new Uint8Array(0);

/**
 * How long one barrier publish, or one read of the data with the barrier,
 * may go unanswered before the read tries again. Not the client's 5 s:
 * while a stream elects a new leader nobody answers a publish or a leader
 * read, and a 5 s wait put the first read after the election up to 5 s
 * behind raw publishes (bench/storage.bench.ts, failover).
 */
export const LINEAR_ATTEMPT_MS = 1000;

/** Publishes the stream's barrier; its acknowledged sequence. Only a current leader with a quorum can acknowledge it. */
export async function barrier(js: JetStreamClient, stream: string, subject: string): Promise<number> {
  const h = natsHeaders();
  h.set("Nats-Rollup", "sub"); // keep one barrier message
  const ack = await js.publish(subject, EMPTY, { headers: h, expect: { streamName: stream }, timeout: LINEAR_ATTEMPT_MS });
  return ack.seq;
}

type Wave = { running?: Promise<number>; next?: Promise<number> };
/**
 * Per connection and stream: the barrier in flight, and the one queued behind
 * it for the reads that began meanwhile. Keyed by the client too, because two
 * clusters may each hold a stream of the same name (replication targets).
 */
const wavesOf = new WeakMap<JetStreamClient, Map<string, Wave>>();

/**
 * A barrier published after the caller's read began. Reads of a stream share
 * barriers (group commit): with none in flight a read publishes one; reads
 * that begin while one is in flight (it started before them, so it may not
 * cover them) share the next one, published when it completes. A stream
 * costs at most one barrier per round trip, however many reads.
 */
export function barrierFor(js: JetStreamClient, stream: string, subject: string): Promise<number> {
  let waves = wavesOf.get(js);
  if (!waves) wavesOf.set(js, (waves = new Map()));
  let w = waves.get(stream);
  if (!w) waves.set(stream, (w = {}));
  const byStream = waves;
  const wave = w;
  const start = (): Promise<number> => {
    const p = barrier(js, stream, subject).finally(() => {
      if (wave.running === p) wave.running = undefined;
      if (!wave.running && !wave.next && byStream.get(stream) === wave) byStream.delete(stream);
    });
    wave.running = p;
    return p;
  };
  if (!wave.running) return start();
  wave.next ??= wave.running
    .catch(() => undefined)
    .then(() => {
      wave.next = undefined;
      return start();
    });
  return wave.next;
}

/**
 * The last message on `subject` as of now (null when there is none), from a
 * server whose state includes a barrier published just before: linearizable.
 * Bounded: a retryable Timeout when no server with the barrier answers within
 * `deadlineMs`.
 */
export async function linearLast(js: JetStreamClient, jsm: JetStreamManager, stream: string, subject: string, barrierSubject: string, deadlineMs = 10_000): Promise<StoredMsg | null> {
  const s = await barrierFor(js, stream, barrierSubject);
  const until = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    let seen = 0;
    let last: StoredMsg | null = null;
    try {
      const read = (async () => {
        const it = await jsm.direct.getLastMessagesFor(stream, { multi_last: [subject, barrierSubject] });
        for await (const m of it) {
          if (m.subject === barrierSubject) seen = m.seq;
          else if (m.subject === subject) last = m;
        }
      })();
      await withinMs(read, LINEAR_ATTEMPT_MS, `a read of ${stream} with its barrier`);
      if (seen >= s) return last;
    } catch (e) {
      if (Date.now() > until) throw e;
    }
    if (Date.now() > until) throw new ShoalError("Timeout", `no server with the read barrier (seq ${s}) of ${stream} answered within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, Math.min(500, 20 * attempt)));
  }
}

/** `p`, or a retryable Timeout naming `what` after `ms` (p is left to settle on its own). */
export function withinMs<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  p.catch(() => undefined);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShoalError("Timeout", `no answer to ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
