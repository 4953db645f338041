/**
 * Bucket replication: rules (KV `shoal_replication`), applying one committed
 * change of a source bucket to a target bucket, and anti-entropy between
 * them. Used by the replicator actor (the pump and the scrub) and by the SDK
 * and CLI (rules and status).
 *
 * Every copy is tagged with the source commit it copies (`Shoal-Source:
 * <stream>:<seq>:<incarnation>`; the incarnation tells a re-created source
 * bucket's commits from the deleted one's), so applying a change is idempotent and an older copy never
 * replaces a newer one; the bytes are digest-verified end to end (the reader
 * checks the source's SHA-256, the writer refuses a body whose SHA-256 differs).
 */
import type { KV } from "@nats-io/kv";
import { kvKeys, sharedKv } from "../runtime/replicas.ts";
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { dropOrdered } from "../jet/consume.ts";
import { ShoalError } from "../errors/index.ts";
import { KV as KV_NAMES, keyFromMetaSubject, metaSubjectAll } from "../subjects/index.ts";
import { assertBucketName } from "./names.ts";
import { decodeStoredMeta, header, H_DELETES_VERSION, H_VERSION_ID, isVersionMarker, NULL_VERSION, toObjectInfo, type ObjectInfo } from "./format.ts";
import { keyVersions } from "./versions.ts";
import { headObject, leaderGet, readObject } from "./reader.ts";
import { deleteObject, deleteVersion, putObject, type Jet, type StoreRef } from "./writer.ts";
import { storeIncarnation } from "./bucket.ts";

export interface ReplicationTarget {
  bucket: string;
  /** Another NATS cluster; the same one when absent. */
  servers?: string[];
  user?: string;
  pass?: string;
  creds?: string;
}

export interface ReplicationRule {
  v: 1;
  id: string;
  source: string;
  target: ReplicationTarget;
  created: string;
}

export interface ReplicationStatus {
  v: 1;
  applied: number;
  skipped: number;
  lastSeq: number;
  lastApplied: string | null;
  lastError: string | null;
  updated: string;
}

export const ruleKey = (id: string) => `rule.${id}`;
export const statusKey = (id: string) => `status.${id}`;
export const replDurable = (id: string) => `shoal-repl-${id}`;

export function openReplication(js: JetStreamClient, jsm: JetStreamManager): Promise<KV> {
  return sharedKv(js, jsm, KV_NAMES.replication, { history: 1 });
}

export function validateRule(o: { source: string; target: ReplicationTarget }): void {
  assertBucketName(o.source);
  assertBucketName(o.target.bucket);
  if (!o.target.servers?.length && o.source === o.target.bucket) throw new ShoalError("InvalidArgument", "a bucket cannot replicate to itself");
  for (const s of o.target.servers ?? []) {
    if (!/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(s)) throw new ShoalError("InvalidArgument", `target server ${JSON.stringify(s)} is not a NATS URL`);
  }
}

export async function listRules(kv: KV): Promise<ReplicationRule[]> {
  const out: ReplicationRule[] = [];
  for (const k of await kvKeys(kv, "rule.*")) {
    const e = await kv.get(k);
    if (e && e.operation === "PUT") out.push(e.json<ReplicationRule>());
  }
  return out.sort((a, b) => a.created.localeCompare(b.created));
}

export type Decision = "copy" | "delete" | "skip";

/**
 * What to do with the target when the source committed `change` at `seq`:
 * never let an older source commit replace a newer copy; never resurrect.
 */
export function decide(change: { deleted: boolean; seq: number; restates?: number }, source: { stream: string; incarnation: string }, target: ObjectInfo | undefined): Decision {
  // a copy of another incarnation of the source (deleted and created again) is not comparable: its sequences restarted
  const same = target?.source?.stream === source.stream && target.source.incarnation === source.incarnation;
  const copiedSeq = same ? target!.source!.seq : undefined;
  if (change.deleted) {
    if (!target) return "skip";
    return copiedSeq !== undefined && copiedSeq > change.seq ? "skip" : "delete";
  }
  // a composed object's stock form (compose.ts) restates a commit: copied already when that commit was
  return copiedSeq !== undefined && (copiedSeq >= change.seq || copiedSeq === change.restates) ? "skip" : "copy";
}

/**
 * Applies one source commit (its metadata message) to the target. Returns
 * what it did. A version whose chunks are already gone because the key was
 * overwritten since is skipped: the newer commit follows in the log.
 */
export async function applyChange(
  src: { jsm: JetStreamManager; store: StoreRef; incarnation: string },
  dst: { jet: Jet; store: StoreRef },
  msg: { subject: string; seq: number; data: Uint8Array },
  signal?: AbortSignal,
): Promise<Decision> {
  let key: string;
  let meta;
  try {
    key = keyFromMetaSubject(msg.subject);
    meta = decodeStoredMeta(msg.data);
  } catch {
    return "skip"; // not object metadata
  }
  // Versioned source (versions.ts): each version is applied with its id, so
  // the target's versions — and its current version — are the source's.
  const versionId = header(meta, H_VERSION_ID);
  const removes = header(meta, H_DELETES_VERSION);
  if (removes !== undefined) {
    await deleteVersion(dst.jet, dst.store, key, removes);
    // the message repeats the key's new current version: already on the target when it has it
    const now = await headObject(dst.jet.jsm, dst.store, key);
    if (meta.deleted || (versionId !== undefined && (now?.info?.versionId === versionId || now?.markerVersionId === versionId))) return "delete";
  }
  // a version (other than "null", which a later write may replace) the target has already: applied before
  const applied = versionId !== undefined && versionId !== NULL_VERSION && (await keyVersions(dst.jet.jsm, dst.store, key)).some((v) => v.versionId === versionId);
  if (applied) return "skip";
  if (isVersionMarker(meta)) {
    const now = await headObject(dst.jet.jsm, dst.store, key);
    if (versionId === undefined || now?.markerVersionId === versionId) return "skip";
    await deleteObject(dst.jet, dst.store, key, undefined, `repl.${src.store.stream}.${src.incarnation}.${msg.seq}`, { versionId });
    return "delete";
  }
  const target = (await headObject(dst.jet.jsm, dst.store, key))?.info;
  const info = meta.deleted ? undefined : toObjectInfo(meta, msg.seq);
  const d = decide({ deleted: meta.deleted === true, seq: msg.seq, ...(info?.restates !== undefined ? { restates: info.restates } : {}) }, { stream: src.store.stream, incarnation: src.incarnation }, target);
  if (d === "delete") await deleteObject(dst.jet, dst.store, key);
  if (d !== "copy" || !info) return d;
  if (versionId !== undefined) {
    // a version is copied while the source keeps it (its chunks are there), even when no longer current
    const kept = (await keyVersions(src.jsm, src.store, key)).some((v) => v.versionId === versionId && v.info?.nuid === info.nuid);
    if (!kept) return "skip";
  } else {
    const current = await headObject(src.jsm, src.store, key);
    if (current?.revision !== undefined && current.revision > msg.seq && current.info?.nuid !== info.nuid) return "skip";
    if (current?.markerRevision !== undefined && current.markerRevision > msg.seq) return "skip";
  }
  await putObject(dst.jet, dst.store, key, readObject(src.jsm, src.store, info, signal ? { signal } : {}), {
    contentType: info.contentType,
    userMeta: info.userMeta,
    etagOverride: info.etag,
    // (a composed object has no digest of the whole: its parts are checked as they are read)
    ...(info.sha256 ? { expectSha256B64: Buffer.from(info.sha256, "base64url").toString("base64") } : {}),
    source: { stream: src.store.stream, seq: msg.seq, incarnation: src.incarnation },
    ...(signal ? { signal } : {}),
    ...(versionId !== undefined ? { versionId } : {}),
  });
  return "copy";
}

/** The live objects and delete markers of a store: key → last metadata message. */
export async function storeState(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef): Promise<Map<string, { seq: number; info: ObjectInfo | undefined; data: Uint8Array; subject: string }>> {
  const out = new Map<string, { seq: number; info: ObjectInfo | undefined; data: Uint8Array; subject: string }>();
  const filter = metaSubjectAll(store.name);
  const last = await leaderGet(jsm, store.stream, { last_by_subj: filter });
  if (!last) return out;
  const consumer = await js.consumers.get(store.stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.LastPerSubject });
  const msgs = await consumer.consume();
  try {
    for await (const m of msgs) {
      try {
        const meta = decodeStoredMeta(m.data);
        out.set(keyFromMetaSubject(m.subject), { seq: m.seq, info: meta.deleted ? undefined : toObjectInfo(meta, m.seq), data: m.data, subject: m.subject });
      } catch {
        // foreign metadata
      }
      if (m.info.pending === 0 || m.seq >= last.seq) break;
    }
  } finally {
    await msgs.close().catch(() => undefined);
    dropOrdered(consumer);
  }
  return out;
}

export interface ScrubReport {
  checked: number;
  same: number;
  copied: number;
  deleted: number;
  /** Target objects the source never had (written there directly): left alone. */
  extra: number;
}

/** Anti-entropy: compares source and target (keys, sizes, digests) and repairs the target. */
export async function scrub(src: { js: JetStreamClient; jsm: JetStreamManager; store: StoreRef }, dst: { jet: Jet; store: StoreRef }, signal?: AbortSignal): Promise<ScrubReport> {
  const r: ScrubReport = { checked: 0, same: 0, copied: 0, deleted: 0, extra: 0 };
  const { incarnation } = await storeIncarnation(src.jsm, src.store);
  const s = await storeState(src.js, src.jsm, src.store);
  const t = await storeState(dst.jet.js, dst.jet.jsm, dst.store);
  for (const [key, e] of s) {
    signal?.throwIfAborted();
    r.checked++;
    const have = t.get(key)?.info;
    if (e.info && have && have.sha256 === e.info.sha256 && have.size === e.info.size) {
      r.same++;
      continue;
    }
    if (!e.info && !have) {
      r.same++;
      continue;
    }
    const d = await applyChange({ jsm: src.jsm, store: src.store, incarnation }, dst, { subject: e.subject, seq: e.seq, data: e.data }, signal);
    if (d === "copy") r.copied++;
    else if (d === "delete") r.deleted++;
    else r.same++;
  }
  for (const [key, e] of t) {
    if (s.has(key) || !e.info) continue;
    r.checked++;
    if (e.info.source?.stream === src.store.stream) {
      await deleteObject(dst.jet, dst.store, key);
      r.deleted++;
    } else r.extra++;
  }
  return r;
}
