/**
 * Shared state (KV buckets, Shoal's own streams) should survive a server
 * loss: on a cluster it is meant to be R3, on a single server R1 (the server
 * refuses R3 there).
 *
 * At a cluster's first boot some peers may not be up yet: the server then
 * cannot place three replicas, and the stream is created at R1 rather than
 * not at all. That is never left silent or permanent: a stream below its
 * intended replicas shows as degraded in the health view
 * (`stream-under-replicated`), and `raiseReplicas` — run when a bucket is
 * opened and by the health-monitor on every check — updates it to the
 * intended count as soon as the peers exist.
 */
import { Kvm, type KV, type KvOptions } from "@nats-io/kv";
import type { JetStreamClient, JetStreamManager, StreamConfig } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { isCannotPlaceReplicas } from "../errors/nats.ts";
import { ShoalError } from "../errors/index.ts";
import { setTimeout as sleep } from "node:timers/promises";
import { ALERTS_STREAM, BARRIER_TOKEN, EVENTS_STREAM, KV as KV_NAMES, kvKeyPrefix, kvStream } from "../subjects/index.ts";
import { linearLast } from "./linear.ts";
import { readSubject } from "../jet/direct.ts";

/** The most replicas Shoal asks for on its own (shared state, buckets created without a count). */
export const MAX_DEFAULT_REPLICAS = 3;

/**
 * The replica count meant for shared state and for buckets created without
 * one: 1 on a single server, 3 on a cluster (whatever the number of servers
 * it knows now: at first boot, or after a server was removed, it may know
 * fewer than it will have; a cluster of two cannot keep R3 and shows its
 * shared state as degraded, which is the truth — set
 * storage.defaultReplicas there). `clusterSize` (the meta group's, when a
 * system-account view has it) only tells whether the server is clustered.
 */
export function intendedReplicas(nc: Pick<NatsConnection, "info">, clusterSize?: number): 1 | 3 {
  return nc.info?.cluster || (clusterSize !== undefined && clusterSize > 1) ? MAX_DEFAULT_REPLICAS : 1;
}

/** The connection behind a JetStream manager (the v3 client keeps it as `nc`), for intendedReplicas. */
function intendedOf(jsm: JetStreamManager): 1 | 3 {
  const nc = (jsm as unknown as { nc?: NatsConnection }).nc;
  return nc ? intendedReplicas(nc) : 3;
}

/** Streams that hold Shoal's shared state: every KV bucket and SHOAL_EVENTS / SHOAL_ALERTS. */
export function sharedStreamNames(): string[] {
  return [...Object.values(KV_NAMES).map(kvStream), EVENTS_STREAM, ALERTS_STREAM];
}

/**
 * Raises a stream to `intended` replicas when it has fewer (a stream update
 * of num_replicas; JetStream copies the data to the new peers). True when it
 * is at the count now; false when it does not exist or the peers are still
 * missing (tried again next time).
 */
export async function raiseReplicas(jsm: JetStreamManager, name: string, intended: number): Promise<boolean> {
  const si = await jsm.streams.info(name).catch(() => null);
  if (!si) return false;
  if ((si.config.num_replicas ?? 1) >= intended) return true;
  try {
    await jsm.streams.update(name, { ...si.config, num_replicas: intended });
    return true;
  } catch (e) {
    if (isCannotPlaceReplicas(e)) return false;
    throw e;
  }
}


/** How often every actor looks for shared state below its intended replicas (raiseSharedState). */
export const SHARED_RAISE_MS = 10_000;

/**
 * Shared state created at R1 because peers were missing when it was first
 * opened (a cluster whose actors started before its meta group knew every
 * server) stays R1 until someone raises it. The health-monitor does on every
 * check, but a deployment may run none, and an actor raises only what it
 * opens, when it opens it: the model test once ran on SHOAL_EVENTS at R1 on
 * one server for its whole run. So every actor runs this loop: every
 * `everyMs` it raises the shared streams that exist below the intended count
 * (nothing on a single server).
 */
export async function raiseSharedState(ctx: { jsm: JetStreamManager; nc: Pick<NatsConnection, "info">; signal: AbortSignal }, everyMs = SHARED_RAISE_MS): Promise<void> {
  while (!ctx.signal.aborted) {
    // after a pause first, jittered: at start the actors open (and raise)
    // what they use themselves, and many starting at once should not all
    // update the same streams while buckets are being created
    await sleep(everyMs * (0.5 + Math.random()), undefined, { signal: ctx.signal }).catch(() => undefined);
    if (ctx.signal.aborted) return;
    const intended = intendedReplicas(ctx.nc);
    if (intended > 1) for (const name of sharedStreamNames()) await raiseReplicas(ctx.jsm, name, intended).catch(() => false);
  }
}

/**
 * Runs `create(3)`, or `create(1)` when the server cannot place three
 * replicas (a single server, or a cluster whose peers are not all up: the
 * health view then shows the stream under-replicated until raiseReplicas
 * lifts it).
 */
export async function withClusterReplicas<T>(create: (replicas: number) => Promise<T>, want = 3): Promise<T> {
  if (want <= 1) return create(1);
  try {
    return await create(want);
  } catch (e) {
    if (!isCannotPlaceReplicas(e)) throw e;
    return create(1);
  }
}

/** KV buckets opened by sharedKv: their name and a manager, for kvKeys. */
const opened = new WeakMap<KV, { js: JetStreamClient; jsm: JetStreamManager; name: string }>();

/**
 * Opens a KV bucket, creating it (R3 on a cluster, else R1) when it does not
 * exist. Its reads go to the stream leader, not to Direct Get: Shoal reads
 * its KV state on compare-and-set and read-after-write paths (an upload's
 * record right after CreateMultipartUpload, a bucket's registry entry or
 * settings), and a replica that has just rejoined answers a Direct Get with
 * what it held before catching up. The model test saw exactly that: an
 * acknowledged CreateMultipartUpload was NoSuchUpload to its first UploadPart
 * right after one server's links were healed (test/cluster/known-issues.test.ts).
 * A leader read costs about what a Direct Get does (0.6 vs 0.7 ms, R1). The
 * streams keep allow_direct, so other readers (the nats CLI) are unchanged.
 */
export async function sharedKv(js: JetStreamClient, jsm: JetStreamManager, name: string, opts: Partial<KvOptions> = {}): Promise<KV> {
  const kv = await openOrCreate(js, jsm, name, opts);
  leaderReads(kv);
  opened.set(kv, { js, jsm, name });
  return kv;
}

/** Makes @nats-io/kv read through the leader (STREAM.MSG.GET) instead of Direct Get; its Bucket keeps the choice in `direct`. */
function leaderReads(kv: KV): void {
  const b = kv as unknown as { direct?: unknown };
  if (typeof b.direct !== "boolean") throw new ShoalError("InternalError", "@nats-io/kv no longer exposes its Direct Get switch");
  b.direct = false;
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
  const prefix = kvKeyPrefix(o.name);
  const info = await o.jsm.streams.info(kvStream(o.name), { subjects_filter: `${prefix}${filter}` });
  return Object.keys(info.state.subjects ?? {})
    .map((s) => s.slice(prefix.length))
    .filter((k) => k !== BARRIER_TOKEN);
}

/** A key's entry as kvGetLinear reads it. */
export interface LinearEntry {
  value: Uint8Array;
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
}

/**
 * A key of a bucket opened with sharedKv, read linearizably
 * (src/runtime/linear.ts): every write acknowledged before the call is seen.
 * It costs a write (the barrier), so callers use it where a plain read's
 * answer would be wrong if stale — to confirm a key is absent before
 * answering "no such thing".
 */
export async function kvGetLinear(kv: KV, key: string): Promise<LinearEntry | null> {
  const o = opened.get(kv);
  if (!o) throw new ShoalError("InternalError", "kvGetLinear needs a bucket opened with sharedKv");
  const prefix = kvKeyPrefix(o.name);
  const m = await linearLast(o.js, o.jsm, kvStream(o.name), `${prefix}${key}`, `${prefix}${BARRIER_TOKEN}`);
  if (!m) return null;
  const op = m.header?.get("KV-Operation");
  return { value: m.data, revision: m.seq, operation: op === "DEL" || op === "PURGE" ? op : "PUT" };
}

/**
 * The entries of a key of a bucket opened with sharedKv, oldest first (at
 * most the bucket's history), read by batched Direct Get: no consumer. The
 * KV library's history() opens an ordered consumer that stays on the
 * server for 5 minutes after it is stopped, and nats-server 2.15 allows a
 * stream 1000: a client repeating a request that reads a key's history
 * (deleting a bucket that does not exist) filled the registry's stream
 * within minutes. Read from whichever replica answers (not linearizable).
 */
export async function kvHistory(kv: KV, key: string, max = 64): Promise<LinearEntry[]> {
  const o = opened.get(kv);
  if (!o) throw new ShoalError("InternalError", "kvHistory needs a bucket opened with sharedKv");
  const out: LinearEntry[] = [];
  for await (const m of readSubject(o.jsm, kvStream(o.name), `${kvKeyPrefix(o.name)}${key}`, { windowBytes: 1024 * 1024, count: max })) {
    const op = m.header?.get("KV-Operation");
    out.push({ value: m.data, revision: m.seq, operation: op === "DEL" || op === "PURGE" ? op : "PUT" });
  }
  return out;
}

async function openOrCreate(js: JetStreamClient, jsm: JetStreamManager, name: string, opts: Partial<KvOptions>): Promise<KV> {
  const kvm = new Kvm(js);
  const existing = await jsm.streams.info(kvStream(name)).catch(() => null);
  if (existing) {
    // created at R1 while peers were missing: lift it now if they are back
    const want = intendedOf(jsm);
    if (existing.config.num_replicas < want && (await raiseReplicas(jsm, kvStream(name), want).catch(() => false))) {
      return kvm.create(name, { ...opts, replicas: want });
    }
    return kvm.create(name, { ...opts, replicas: existing.config.num_replicas });
  }
  try {
    return await withClusterReplicas((replicas) => kvm.create(name, { ...opts, replicas }), intendedOf(jsm));
  } catch (e) {
    const now = await jsm.streams.info(kvStream(name)).catch(() => null); // created by someone else meanwhile
    if (!now) throw e;
    return kvm.create(name, { ...opts, replicas: now.config.num_replicas });
  }
}

/** Makes sure a stream exists (R3 on a cluster, else R1); an existing one is left as it is. */
export async function sharedStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  const existing = await jsm.streams.info(config.name).catch(() => null);
  if (existing) {
    await raiseReplicas(jsm, config.name, intendedOf(jsm)).catch(() => false);
    return;
  }
  try {
    await withClusterReplicas((num_replicas) => jsm.streams.add({ ...config, num_replicas }), intendedOf(jsm));
  } catch (e) {
    await jsm.streams.info(config.name).catch(() => Promise.reject(e)); // created by someone else meanwhile
  }
}
