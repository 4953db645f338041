/**
 * Single-message publish with a message id, retried on transient failures
 * only. The id makes a retry after a lost ack land once (within the stream's
 * duplicate window): a retried publish that the server reports as a
 * duplicate is the first attempt's success, and its ack says so.
 */
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/nats-core";
import type { JetStreamClient, PubAck } from "@nats-io/jetstream";
import { retry } from "../runtime/backoff.ts";
import { classify, toJetError } from "./errors.ts";
import { H, ttlValue } from "./headers.ts";

export interface PublishOptions {
  /** Nats-Msg-Id. Required: retries are only safe with one. */
  msgId: string;
  /** One attempt's wait for the ack. */
  attemptMs: number;
  /** Give up (ShoalError ServiceUnavailable/Timeout) this long after the first attempt. */
  deadlineMs: number;
  signal?: AbortSignal;
  headers?: MsgHdrs;
  /** Nats-Expected-Last-Subject-Sequence (0 = the subject must be empty). */
  expectLastSubjectSeq?: number;
  /** Per-message TTL in ms (stream `allow_msg_ttl`), or "never" to outlive the stream's max_age. */
  ttlMs?: number | "never";
  /** Nats-Rollup: "sub" keeps only this message on its subject. */
  rollup?: "sub";
  onRetry?: (e: unknown, attempt: number) => void;
}

export interface HeaderOptions {
  msgId?: string;
  headers?: MsgHdrs;
  expectLastSubjectSeq?: number;
  ttlMs?: number | "never";
  rollup?: "sub";
}

/** The headers a publish carries: the caller's, then src/jet's own. */
export function buildHeaders(o: HeaderOptions, always: true): MsgHdrs;
export function buildHeaders(o: HeaderOptions, always?: boolean): MsgHdrs | undefined;
export function buildHeaders(o: HeaderOptions, always = false): MsgHdrs | undefined {
  if (!always && !o.msgId && !o.headers && o.expectLastSubjectSeq === undefined && o.ttlMs === undefined && !o.rollup) return undefined;
  const h = natsHeaders();
  if (o.headers) for (const [k, vs] of o.headers) for (const v of vs) h.append(k, v);
  if (o.msgId) h.set(H.msgId, o.msgId);
  if (o.expectLastSubjectSeq !== undefined) h.set(H.expectedLastSubjectSeq, String(o.expectLastSubjectSeq));
  if (o.ttlMs !== undefined) h.set(H.ttl, ttlValue(o.ttlMs));
  if (o.rollup) h.set(H.rollup, o.rollup);
  return h;
}

/** Messages up to this size wait for their ack as long as acks have been taking (AckClock), not the caller's whole attempt. */
export const SMALL_PUBLISH_BYTES = 64 * 1024;
/** The shortest wait for a small message's ack: a raw client's usual 250 ms. */
export const MIN_ATTEMPT_MS = 250;

/**
 * How long acks of small publishes take through one client, smoothed as TCP
 * smooths round trips (RFC 6298: srtt, rttvar; a retried attempt is not
 * sampled, since its ack may be the first attempt's). An attempt waits
 * srtt + 4·rttvar, at least MIN_ATTEMPT_MS and at most the caller's
 * attempt. During a stream-leader election nobody answers a publish: with
 * the caller's fixed 1 s a put came back up to 1 s after the new leader
 * (0.31 s behind raw publishes at the median, bench/storage.bench.ts
 * failover); a busy server's slow acks lengthen the wait instead of
 * sending each message again.
 */
export class AckClock {
  private srtt = 0;
  private rttvar = 0;
  private samples = 0;

  observe(ms: number): void {
    if (this.samples++ === 0) {
      this.srtt = ms;
      this.rttvar = ms / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
  }

  /** One attempt's wait, at most `capMs` (the caller's attempt, also the wait before any ack was seen). */
  attemptMs(capMs: number): number {
    if (this.samples === 0) return capMs;
    return Math.min(capMs, Math.max(MIN_ATTEMPT_MS, Math.ceil(this.srtt + 4 * this.rttvar)));
  }
}

const clocks = new WeakMap<JetStreamClient, AckClock>();

/** The ack clock of a client's small publishes. */
export function ackClock(js: JetStreamClient): AckClock {
  let c = clocks.get(js);
  if (!c) clocks.set(js, (c = new AckClock()));
  return c;
}

export async function publish(js: JetStreamClient, subject: string, data: Uint8Array | string, o: PublishOptions): Promise<PubAck> {
  const headers = buildHeaders(o);
  const clock = (typeof data === "string" ? data.length * 3 : data.byteLength) <= SMALL_PUBLISH_BYTES ? ackClock(js) : undefined;
  const once = async (attempt: number): Promise<PubAck> => {
    if (!clock) return js.publish(subject, data, { timeout: o.attemptMs, ...(headers ? { headers } : {}) });
    const t0 = performance.now();
    const ack = await js.publish(subject, data, { timeout: clock.attemptMs(o.attemptMs), ...(headers ? { headers } : {}) });
    if (attempt === 1) clock.observe(performance.now() - t0);
    return ack;
  };
  try {
    return await retry(once, {
      attempts: Number.MAX_SAFE_INTEGER,
      baseMs: 25,
      maxMs: 250,
      deadlineMs: o.deadlineMs,
      retryable: (e) => classify(e) === "transient",
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onRetry ? { onRetry: (e: unknown, attempt: number) => o.onRetry!(e, attempt) } : {}),
    });
  } catch (e) {
    throw toJetError(e, `publish to ${subject}`, { write: true });
  }
}
