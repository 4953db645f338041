/**
 * Flow-controlled byte streams over plain NATS messages, used in both
 * directions (SDK → storage actor on PUT, storage actor → SDK on GET).
 *
 * The sender publishes data messages (header `Shoal-Seq: n`) with a reply
 * subject on which the receiver acknowledges the bytes it has CONSUMED
 * (`{"ack": total}`), so at most `window` bytes are ever in flight or
 * buffered: memory per transfer is bounded and a slow side slows the other.
 * The stream ends with an empty message carrying `Shoal-End: 1`, or is
 * abandoned with `Shoal-Abort: <code>`. Either side that hears nothing for
 * `idleMs` aborts: a peer that stalls or vanishes is noticed within seconds.
 */
import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { ShoalError, errorFromWire, errorToWire, toShoalError, isErrorCode } from "../errors/index.ts";
import { HEADER_ROOM, rechunk } from "./rechunk.ts";

export const H_SEQ = "Shoal-Seq";
export const H_END = "Shoal-End";
export const H_ABORT = "Shoal-Abort";
export const DEFAULT_WINDOW = 8 * 1024 * 1024;
export const DEFAULT_IDLE_MS = 5000;

export interface SendOptions {
  windowBytes?: number;
  idleMs?: number;
  signal?: AbortSignal;
  /** Largest data message (must be <= the server's max_payload). */
  maxMessage?: number;
}

/**
 * Sends `source` to `subject`. Resolves with the number of bytes sent once
 * everything is acknowledged and the end marker is out; `end` lets the caller
 * send the end marker as a request (PUT wants the commit reply).
 */
export async function sendStream(
  nc: NatsConnection,
  subject: string,
  source: AsyncIterable<Uint8Array>,
  opts: SendOptions & { end?: (headers: ReturnType<typeof natsHeaders>) => Promise<void> } = {},
): Promise<number> {
  const window = opts.windowBytes ?? DEFAULT_WINDOW;
  const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  const maxMessage = Math.min(opts.maxMessage ?? Infinity, (nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM);
  const ackInbox = createInbox();
  let acked = 0;
  let waiter: (() => void) | undefined;
  let peerError: ShoalError | undefined;
  const sub = nc.subscribe(ackInbox, {
    callback: (err, m) => {
      if (err) return;
      const e = errorFromWire((h) => m.headers?.get(h) || undefined, m.string());
      if (e) peerError = e;
      else {
        try {
          const a = (m.json() as { ack?: unknown }).ack;
          if (typeof a === "number" && a > acked) acked = a;
        } catch {
          // ignore a malformed ack; the idle timer guards us
        }
      }
      waiter?.();
    },
  });
  const waitCredit = (need: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      if (!need()) return resolve();
      const timer = setTimeout(() => {
        waiter = undefined;
        reject(new ShoalError("Timeout", `the receiver acknowledged nothing for ${idleMs} ms`));
      }, idleMs);
      const onAbort = () => {
        clearTimeout(timer);
        reject(new ShoalError("Aborted", undefined, { cause: opts.signal?.reason }));
      };
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      waiter = () => {
        if (peerError || !need()) {
          clearTimeout(timer);
          opts.signal?.removeEventListener("abort", onAbort);
          waiter = undefined;
          resolve();
        }
      };
    });
  let sent = 0;
  let seq = 0;
  try {
    // Full-size messages: the receiver's chunks then map 1:1 onto them.
    for await (const data of rechunk(source, maxMessage)) {
      if (opts.signal?.aborted) throw new ShoalError("Aborted", undefined, { cause: opts.signal.reason });
      await waitCredit(() => sent - acked + data.byteLength > window && sent - acked > 0);
      if (peerError) throw peerError;
      const h = natsHeaders();
      h.set(H_SEQ, String(seq++));
      nc.publish(subject, data, { reply: ackInbox, headers: h });
      sent += data.byteLength;
    }
    await waitCredit(() => acked < sent);
    if (peerError) throw peerError;
    const h = natsHeaders();
    h.set(H_SEQ, String(seq));
    h.set(H_END, "1");
    if (opts.end) await opts.end(h);
    else nc.publish(subject, "", { headers: h });
    return sent;
  } catch (e) {
    if (!peerError) {
      const err = toShoalError(e);
      const h = natsHeaders();
      h.set(H_ABORT, err.code);
      nc.publish(subject, "", { headers: h });
    }
    throw e;
  } finally {
    sub.unsubscribe();
  }
}

/**
 * The receiving side: an async iterable of the stream's bytes. Acknowledges
 * each message once the consumer asks for the next one. After the end marker
 * the iteration finishes and `endMsg` holds the marker (to reply to).
 */
export class StreamReceiver implements AsyncIterable<Uint8Array> {
  readonly sub: Subscription;
  endMsg: Msg | undefined;
  /** Reply subject of the last message seen: where to tell the sender to stop. */
  lastReply: string | undefined;
  private readonly idleMs: number;
  private consumed = 0;

  constructor(nc: NatsConnection, subject: string, opts: { idleMs?: number } = {}) {
    this.sub = nc.subscribe(subject);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const it = this.sub[Symbol.asyncIterator]();
    let expect = 0;
    let pendingAck: Msg | undefined;
    try {
      for (;;) {
        if (pendingAck?.reply) pendingAck.respond(JSON.stringify({ ack: this.consumed }));
        pendingAck = undefined;
        let timer: NodeJS.Timeout | undefined;
        const next = await Promise.race([
          it.next(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new ShoalError("Timeout", `the sender sent nothing for ${this.idleMs} ms`)), this.idleMs);
          }),
        ]).finally(() => clearTimeout(timer));
        if (next.done) throw new ShoalError("InvalidRequest", "the transfer was closed before its end");
        const m = next.value;
        this.lastReply = m.reply;
        const abort = m.headers?.get(H_ABORT);
        if (abort) throw new ShoalError(isErrorCode(abort) ? abort : "InvalidRequest", `the sender aborted the transfer (${abort})`);
        const seq = Number(m.headers?.get(H_SEQ));
        if (seq !== expect) throw new ShoalError("InvalidRequest", `transfer message ${seq} out of order (expected ${expect})`);
        expect++;
        if (m.headers?.get(H_END)) {
          this.endMsg = m;
          return;
        }
        this.consumed += m.data.byteLength;
        pendingAck = m;
        yield m.data;
      }
    } finally {
      this.sub.unsubscribe();
    }
  }

  /** Tells the sender to stop (when the receiver fails): the error goes to its ack inbox. */
  static refuse(nc: NatsConnection, replyTo: string | undefined, e: unknown): void {
    if (!replyTo) return;
    const wire = errorToWire(toShoalError(e));
    const h = natsHeaders();
    for (const [k, v] of Object.entries(wire.headers)) h.set(k, v);
    nc.publish(replyTo, wire.body, { headers: h });
  }
}
