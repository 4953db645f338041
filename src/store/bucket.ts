/**
 * The JetStream Object Store behind a bucket: the same stream configuration
 * @nats-io/obj creates (so stock tools open it), with the bucket's replicas.
 */
import { DiscardPolicy, StorageType, type JetStreamManager, type StreamInfo } from "@nats-io/jetstream";
import { ShoalError } from "../errors/index.ts";
import { chunkSubjectAll, metaSubjectAll, objectStoreName, objectStoreStream } from "../subjects/index.ts";
import type { StoreRef } from "./writer.ts";

export function storeRef(bucket: string, shard?: number): StoreRef {
  return { name: objectStoreName(bucket, shard), stream: objectStoreStream(bucket, shard) };
}

function isStreamNotFound(e: unknown): boolean {
  return (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10059 || /stream not found/i.test(String((e as Error)?.message));
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
      discard: DiscardPolicy.New,
      storage: StorageType.File,
      num_replicas: replicas,
      max_age: 0,
    });
  } catch (e) {
    const msg = String((e as Error)?.message);
    if (/insufficient resources|replicas > 1 not supported|no suitable peers/i.test(msg)) {
      throw new ShoalError("InvalidReplicas", `cannot place ${replicas} replicas on this cluster: ${msg}`, { cause: e });
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
