/**
 * Turning on the stream features the data path uses, on a stream that may
 * have been created by stock @nats-io/obj. Measured on 2.15.1: an
 * object-store stream (`OBJ_<bucket>`) accepts all three on update and stays
 * readable by stock `@nats-io/obj`; `allow_atomic` and `allow_batched` can
 * be turned off again, `allow_msg_ttl` cannot (API error 10052) — enabling
 * it is one-way.
 */
import type { JetStreamManager, StreamInfo } from "@nats-io/jetstream";
import { toJetError } from "./errors.ts";

export interface StreamFeatures {
  /** allow_atomic: atomic batch publish (2.12). */
  atomic?: boolean;
  /** allow_batched: fast-ingest batches (2.14). */
  batched?: boolean;
  /** allow_msg_ttl: per-message Nats-TTL (2.11). One-way. */
  msgTtl?: boolean;
}

/** Turns the asked features on (never off); updates the stream only if one is missing. */
export async function enableFeatures(jsm: JetStreamManager, stream: string, want: StreamFeatures): Promise<StreamInfo> {
  try {
    const si = await jsm.streams.info(stream);
    const c = si.config;
    const patch = {
      ...(want.atomic && !c.allow_atomic ? { allow_atomic: true } : {}),
      ...(want.batched && !c.allow_batched ? { allow_batched: true } : {}),
      ...(want.msgTtl && !c.allow_msg_ttl ? { allow_msg_ttl: true } : {}),
    };
    if (Object.keys(patch).length === 0) return si;
    return await jsm.streams.update(stream, { ...c, ...patch });
  } catch (e) {
    throw toJetError(e, `enable features on ${stream}`);
  }
}
