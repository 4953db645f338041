/**
 * Shared state (KV buckets, Shoal's own streams) should survive a server
 * loss: on a cluster it is created at R3, on a single server at R1 (the
 * server refuses R3 there). An existing bucket or stream is used as it is.
 */
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";
import type { JetStreamClient, JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import { ShoalError } from "../errors/index.ts";

const SINGLE = /replicas > 1 not supported|non-clustered|insufficient resources|no suitable peers/i;

/** Runs `create(3)`, or `create(1)` when the server cannot place three replicas. */
export async function withClusterReplicas<T>(create: (replicas: number) => Promise<T>, want = 3): Promise<T> {
  try {
    return await create(want);
  } catch (e) {
    if (!SINGLE.test(String((e as Error)?.message))) throw e;
    return create(1);
  }
}

/** KV buckets opened by sharedKv: their name and a manager, for kvKeys. */
const opened = new WeakMap<KV, { jsm: JetStreamManager; name: string }>();

/** Opens a KV bucket, creating it (R3 on a cluster, else R1) when it does not exist. */
export async function sharedKv(js: JetStreamClient, jsm: JetStreamManager, name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  const kv = await openOrCreate(js, jsm, name, opts);
  opened.set(kv, { jsm, name });
  return kv;
}

/**
 * Keys of a bucket opened with sharedKv that match `filter` (a subject
 * filter on keys), read from the stream's per-subject counts: one bounded
 * request. Not kv.keys(): its consumer ends only when it sees nothing
 * pending or an idle heartbeat (5 s), so keys rewritten more often than
 * that (heartbeats, parts of an upload in progress) can keep it from ever
 * ending — measured. The list includes keys whose last operation is a
 * delete or purge: callers read each key and skip those.
 */
export async function kvKeys(kv: KV, filter = ">"): Promise<string[]> {
  const o = opened.get(kv);
  if (!o) throw new ShoalError("InternalError", "kvKeys needs a bucket opened with sharedKv");
  const prefix = `$KV.${o.name}.`;
  const info = await o.jsm.streams.info(`KV_${o.name}`, { subjects_filter: `${prefix}${filter}` });
  return Object.keys(info.state.subjects ?? {}).map((s) => s.slice(prefix.length));
}

async function openOrCreate(js: JetStreamClient, jsm: JetStreamManager, name: string, opts: Partial<KvOptions>): Promise<KV> {
  const kvm = new Kvm(js);
  const existing = await jsm.streams.info(`KV_${name}`).catch(() => null);
  if (existing) return kvm.create(name, { ...opts, replicas: existing.config.num_replicas });
  try {
    return await withClusterReplicas((replicas) => kvm.create(name, { ...opts, replicas }));
  } catch (e) {
    const now = await jsm.streams.info(`KV_${name}`).catch(() => null); // created by someone else meanwhile
    if (!now) throw e;
    return kvm.create(name, { ...opts, replicas: now.config.num_replicas });
  }
}

/** Makes sure a stream exists (R3 on a cluster, else R1); an existing one is left as it is. */
export async function sharedStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch {
    // create it
  }
  try {
    await withClusterReplicas((num_replicas) => jsm.streams.add({ ...config, num_replicas }));
  } catch (e) {
    await jsm.streams.info(config.name).catch(() => Promise.reject(e)); // created by someone else meanwhile
  }
}
