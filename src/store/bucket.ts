/**
 * The JetStream Object Store behind a bucket: the same stream configuration
 * @nats-io/obj creates (so stock tools open it), with the bucket's replicas.
 */
import { DiscardPolicy, StorageType, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { isCannotPlaceReplicas, isPeerOffline, isStreamNotFound } from "../errors/nats.ts";
import { ShoalError } from "../errors/index.ts";
import { chunkSubjectAll, metaSubjectAll, objectStoreName, objectStoreStream } from "../subjects/index.ts";
import type { StoreRef } from "./types.ts";

/**
 * The incarnation of a bucket's stream: its creation time, which the meta
 * leader assigns once and every server reports alike (nanoseconds; compact
 * base 36). A bucket deleted and created again gets a new stream with the
 * same name and sequences starting again from 1; anything keyed by a stream
 * sequence (the list index, event ids, replication tags) must also be keyed
 * by this, or the new bucket's sequences collide with the old one's.
 */
export function incarnationOf(si: Pick<StreamInfo, "created">): string {
  const digits = String(si.created).replace(/[^0-9]/g, "");
  if (digits === "") throw new ShoalError("InternalError", "stream info has no creation time");
  return BigInt(digits).toString(36);
}

/** The store's stream info and incarnation (NoSuchBucket when absent). */
export async function storeIncarnation(jsm: JetStreamManager, store: StoreRef): Promise<{ info: StreamInfo; incarnation: string }> {
  const info = await storeInfo(jsm, store);
  return { info, incarnation: incarnationOf(info) };
}

export function storeRef(bucket: string, shard?: number): StoreRef {
  return { name: objectStoreName(bucket, shard), stream: objectStoreStream(bucket, shard) };
}


/** Creates the store's stream, or returns the existing one unchanged. */
export async function ensureStore(jsm: JetStreamManager, store: StoreRef, replicas: number, description = ""): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(store.stream);
  } catch (e) {
    if (!isStreamNotFound(e)) throw e;
  }
  try {
    return await jsm.streams.add({
      name: store.stream,
      description,
      subjects: [chunkSubjectAll(store.name), metaSubjectAll(store.name)],
      allow_direct: true,
      allow_rollup_hdrs: true,
      // the data path's batch features (docs/datapath.md); streams created before them get them on first write (writer.streamTraits)
      allow_batched: true,
      allow_atomic: true,
      discard: DiscardPolicy.New,
      storage: StorageType.File,
      num_replicas: replicas,
      max_age: 0,
    });
  } catch (e) {
    // "no suitable peers for placement, peer offline": the cluster is big
    // enough but a server is down or has just come back (the meta leader
    // counts a restarted peer as offline for a few seconds). Transient: 503,
    // not the client's mistake (found by test/cluster/model.test.ts).
    if (isPeerOffline(e)) {
      throw new ShoalError("ServiceUnavailable", `cannot place ${replicas} replicas while a server is offline; retry`, { cause: e });
    }
    if (isCannotPlaceReplicas(e)) {
      throw new ShoalError("InvalidReplicas", `cannot place ${replicas} replicas on this cluster: ${String((e as Error)?.message)}`, { cause: e });
    }
    throw e;
  }
}

/** Stream info, or NoSuchBucket. */
export async function storeInfo(jsm: JetStreamManager, store: StoreRef): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(store.stream);
  } catch (e) {
    if (isStreamNotFound(e)) throw new ShoalError("NoSuchBucket", undefined, { cause: e });
    throw e;
  }
}

export async function deleteStore(jsm: JetStreamManager, store: StoreRef): Promise<void> {
  try {
    await jsm.streams.delete(store.stream);
  } catch (e) {
    if (!isStreamNotFound(e)) throw e;
  }
}
