/**
 * The bucket registry: KV shoal_buckets, one key per S3 bucket, value = its
 * config, written with compare-and-set. The object store stream is created
 * after the registry entry and removed before it, so an entry without a
 * stream means "being created or deleted".
 */
import type { KV } from "@nats-io/kv";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { kvHistory, kvKeys, sharedKv } from "../runtime/replicas.ts";
import { isWrongLastSequence } from "../errors/nats.ts";
import { ShoalError } from "../errors/index.ts";
import { withTimeout } from "../runtime/backoff.ts";
import { KV as KV_NAMES } from "../subjects/index.ts";

export interface BucketConfig {
  v: 1;
  name: string;
  replicas: 1 | 3 | 5;
  shards: number;
  created: string;
  /** The request id of the create that registered it: a retry of that create is answered, not refused (BucketAlreadyExists). */
  requestId?: string;
  /**
   * The request id of a delete under way: written just before the bucket's
   * stream is removed, so that once the entry is gone a retry of that
   * delete (its answer lost) is answered, not refused (NoSuchBucket).
   */
  deleting?: string;
}

/** The registry (R3 on a cluster, R1 on a single server). */
export function openRegistry(js: JetStreamClient, jsm: JetStreamManager): Promise<KV> {
  return sharedKv(js, jsm, KV_NAMES.buckets, { history: 5 });
}

export function decodeBucketConfig(data: Uint8Array): BucketConfig {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ShoalError("MalformedPayload", "bucket registry entry is not JSON");
  }
  const c = v as Partial<BucketConfig>;
  if (c?.v !== 1 || typeof c.name !== "string" || ![1, 3, 5].includes(c.replicas as number) || typeof c.created !== "string") {
    throw new ShoalError("MalformedPayload", "bucket registry entry is malformed");
  }
  return {
    v: 1,
    name: c.name,
    replicas: c.replicas as 1 | 3 | 5,
    shards: typeof c.shards === "number" ? c.shards : 1,
    created: c.created,
    ...(typeof c.requestId === "string" ? { requestId: c.requestId } : {}),
    ...(typeof c.deleting === "string" ? { deleting: c.deleting } : {}),
  };
}

export async function getBucket(kv: KV, name: string): Promise<BucketConfig | undefined> {
  const e = await kv.get(name);
  if (!e || e.operation !== "PUT") return undefined;
  return decodeBucketConfig(e.value);
}

/** Registers a bucket; BucketAlreadyExists when the name is taken (CAS on create). */
export async function registerBucket(kv: KV, cfg: BucketConfig): Promise<number> {
  try {
    return await kv.create(cfg.name, JSON.stringify(cfg));
  } catch (e) {
    if (isWrongLastSequence(e)) throw new ShoalError("BucketAlreadyExists", undefined, { cause: e, detail: { bucket: cfg.name } });
    throw e;
  }
}

export async function unregisterBucket(kv: KV, name: string): Promise<void> {
  await kv.delete(name);
}

/** Records that the delete with `requestId` is removing the bucket (see BucketConfig.deleting). */
export async function markDeleting(kv: KV, cfg: BucketConfig, requestId: string): Promise<void> {
  await kv.put(cfg.name, JSON.stringify({ ...cfg, deleting: requestId }));
}

/**
 * The request id of the delete that removed the bucket, when its entry's
 * last change is that removal and the one before it recorded the delete
 * (markDeleting); otherwise undefined (never registered, created again since,
 * or removed by a delete that did not record itself).
 */
export async function deletedBy(kv: KV, name: string, timeoutMs = 2000): Promise<string | undefined> {
  // the key's history (at most the registry's 5 entries) by Direct Get, no
  // consumer (kvHistory: one per call used to stay on the registry's stream
  // for 5 minutes); bounded, and on any failure the answer is "not known"
  const entries = (await withTimeout(kvHistory(kv, name, 16), timeoutMs).catch(() => undefined)) ?? [];
  const last = entries[entries.length - 1];
  const before = entries[entries.length - 2];
  if (!last || last.operation === "PUT" || before?.operation !== "PUT") return undefined;
  try {
    return decodeBucketConfig(before.value).deleting;
  } catch {
    return undefined;
  }
}

export async function listBuckets(kv: KV): Promise<BucketConfig[]> {
  const out: BucketConfig[] = [];
  for (const k of await kvKeys(kv)) {
    const c = await getBucket(kv, k).catch(() => undefined);
    if (c) out.push(c);
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
