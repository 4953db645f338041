/**
 * Reads through Direct Get (stream `allow_direct`): no consumer is created,
 * so reads keep working while one of three servers is down (ENGINE.md), and
 * any current replica may answer.
 *
 * `readSubject` walks one subject with batched Direct Get (nats-server 2.11,
 * `jsm.direct.getBatch`): each request asks for up to `windowBytes` of the
 * subject's messages from a sequence on. The next window is requested as
 * soon as the current one has arrived, while the caller still consumes it —
 * read-ahead of exactly one window, so at most two windows are held.
 * (One window ahead is all a walk can do: the next request starts after the
 * last sequence of the previous one. With the sequences known — Shoal keeps
 * them in its metadata — more windows could be in flight.)
 */
import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { classify, toJetError } from "./errors.ts";

/** One message by sequence; null when there is none. */
export async function getSeq(jsm: JetStreamManager, stream: string, seq: number): Promise<StoredMsg | null> {
  try {
    return await jsm.direct.getMessage(stream, { seq });
  } catch (e) {
    if (classify(e) === "notFound") return null;
    throw toJetError(e, `direct get ${stream}#${seq}`);
  }
}

/** The last message on a subject; null when there is none. */
export async function getLast(jsm: JetStreamManager, stream: string, subject: string): Promise<StoredMsg | null> {
  try {
    return await jsm.direct.getMessage(stream, { last_by_subj: subject });
  } catch (e) {
    if (classify(e) === "notFound") return null;
    throw toJetError(e, `direct get last ${subject}`);
  }
}

export interface ReadStats {
  /** Batched Direct Get requests sent. */
  requests: number;
  /** Most bytes held at once: received and not yet handed to the caller. */
  maxHeldBytes: number;
}

export interface ReadOptions {
  /** First sequence to look at (default 1). */
  fromSeq?: number;
  /** Bytes asked for per request (the server returns at least one message). */
  windowBytes: number;
  /** Stop after this many messages (e.g. an object's chunk count). */
  count?: number;
  stats?: ReadStats;
}

/** The messages of `subject` in stream order, fetched a window at a time with one window of read-ahead. */
export async function* readSubject(jsm: JetStreamManager, stream: string, subject: string, o: ReadOptions): AsyncGenerator<StoredMsg> {
  if (!(o.windowBytes > 0)) throw new RangeError("windowBytes must be positive");
  const stats = o.stats ?? { requests: 0, maxHeldBytes: 0 };
  let held = 0;
  let left = o.count ?? Infinity;
  const fetchWindow = async (seq: number): Promise<{ msgs: StoredMsg[]; more: boolean }> => {
    stats.requests++;
    const msgs: StoredMsg[] = [];
    let more = true;
    try {
      const it = await jsm.direct.getBatch(stream, { seq, next_by_subj: subject, max_bytes: o.windowBytes, ...(left !== Infinity ? { batch: left } : {}) });
      for await (const m of it) {
        msgs.push(m);
        held += m.data.byteLength;
        stats.maxHeldBytes = Math.max(stats.maxHeldBytes, held);
        more = m.pending > 0;
      }
    } catch (e) {
      if (classify(e) === "notFound") return { msgs, more: false };
      throw toJetError(e, `direct get batch ${subject}`);
    }
    return { msgs, more: more && msgs.length > 0 };
  };
  let next: Promise<{ msgs: StoredMsg[]; more: boolean }> | undefined = fetchWindow(o.fromSeq ?? 1);
  while (next) {
    const w: { msgs: StoredMsg[]; more: boolean } = await next;
    left -= w.msgs.length;
    const lastSeq = w.msgs.at(-1)?.seq;
    // read-ahead: the next window is on its way while this one is consumed
    next = w.more && left > 0 && lastSeq !== undefined ? fetchWindow(lastSeq + 1) : undefined;
    next?.catch(() => undefined); // observed when awaited; never unhandled if the caller stops early
    for (const m of w.msgs) {
      held -= m.data.byteLength;
      yield m;
    }
  }
}

export interface ReadSeqsOptions {
  /** Messages per batched Direct Get request. */
  windowMsgs: number;
  /** Requests in flight at once (read-ahead of `inflight - 1` windows); at most `inflight` windows are held. */
  inflight: number;
  stats?: ReadStats;
}

/**
 * The messages at `seqs` (all on `subject`, ascending — e.g. an object's
 * chunk sequences from its metadata), in that order, with `inflight`
 * windows requested at once. Knowing the sequences is what lets more than
 * one window be in flight: each request starts at its window's first
 * sequence. A message that is missing or not the expected one fails the
 * read (the object changed or lost a chunk).
 */
export async function* readSeqs(jsm: JetStreamManager, stream: string, subject: string, seqs: readonly number[], o: ReadSeqsOptions): AsyncGenerator<StoredMsg> {
  if (!(o.windowMsgs >= 1 && o.inflight >= 1)) throw new RangeError("windowMsgs and inflight must be at least 1");
  const stats = o.stats ?? { requests: 0, maxHeldBytes: 0 };
  let held = 0;
  const fetchWindow = async (from: number): Promise<StoredMsg[]> => {
    const want = seqs.slice(from, from + o.windowMsgs);
    stats.requests++;
    const msgs: StoredMsg[] = [];
    try {
      const it = await jsm.direct.getBatch(stream, { seq: want[0]!, next_by_subj: subject, batch: want.length });
      for await (const m of it) {
        msgs.push(m);
        held += m.data.byteLength;
        stats.maxHeldBytes = Math.max(stats.maxHeldBytes, held);
      }
    } catch (e) {
      if (classify(e) !== "notFound") throw toJetError(e, `direct get batch ${subject}`);
    }
    for (let i = 0; i < want.length; i++) {
      if (msgs[i]?.seq !== want[i]) throw toJetError(new Error(`expected ${subject}#${want[i]}, got #${msgs[i]?.seq ?? "nothing"}`), `direct get batch ${subject}`);
    }
    return msgs;
  };
  const windows: Array<Promise<StoredMsg[]>> = [];
  let next = 0;
  const fill = () => {
    while (windows.length < o.inflight && next < seqs.length) {
      const p = fetchWindow(next);
      p.catch(() => undefined); // awaited in order below; never unhandled if the caller stops early
      windows.push(p);
      next += o.windowMsgs;
    }
  };
  fill();
  while (windows.length > 0) {
    const msgs = await windows.shift()!;
    for (const m of msgs) {
      held -= m.data.byteLength;
      yield m;
    }
    fill(); // the next window is asked for once this one is consumed: never more than `inflight` held
  }
}
