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

export async function publish(js: JetStreamClient, subject: string, data: Uint8Array | string, o: PublishOptions): Promise<PubAck> {
  const headers = buildHeaders(o);
  try {
    return await retry(() => js.publish(subject, data, { timeout: o.attemptMs, ...(headers ? { headers } : {}) }), {
      attempts: Number.MAX_SAFE_INTEGER,
      baseMs: 25,
      maxMs: 250,
      deadlineMs: o.deadlineMs,
      retryable: (e) => classify(e) === "transient",
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.onRetry ? { onRetry: (e: unknown, attempt: number) => o.onRetry!(e, attempt) } : {}),
    });
  } catch (e) {
    throw toJetError(e, `publish to ${subject}`);
  }
}
