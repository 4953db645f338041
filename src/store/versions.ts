/**
 * Object versions (S3 versioning) over JetStream's per-subject history.
 *
 * Every metadata message on a key's subject `$O.<b>.M.<key>` is one change
 * of that key, and the key's versions are what these changes leave, folded
 * in stream order (`foldVersions`, pure):
 *
 * - a message with `Shoal-Version-Id: V` (or none: V = "null") is version V —
 *   an object, or a delete marker when it is `deleted` with
 *   `Shoal-Delete-Marker: 1` — and becomes the current version; an earlier
 *   version with the same id is replaced (a write while versioning is
 *   suspended replaces the "null" version; replication may repeat a version);
 * - a `deleted` message without the marker flag is an unversioned delete: it
 *   removes the "null" version (in a never-versioned bucket: everything);
 * - `Shoal-Deletes-Version: V` first removes version V (DELETE ?versionId=V);
 *   such a message repeats the key's new current version (same id, same
 *   chunks) or, when none is left, is an unversioned delete. So the last
 *   message per subject is always the current version, which is all that
 *   ADR-20 readers (`nats object get`, @nats-io/obj) look at.
 *
 * Retention follows from the fold, not from the bucket's versioning state:
 * messages that are versions are kept (the sweep keeps their chunks); the
 * others are replaced and removed by the sweep after the read grace period.
 * Messages are never rewritten, so every consumer of the stream (list index,
 * events, replication) sees each change exactly once, in order.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { dropOrdered } from "../jet/consume.ts";
import { nuid } from "@nats-io/nats-core";
import { ShoalError } from "../errors/index.ts";
import { isVersionId } from "../subjects/v1.ts";
import { keyFromMetaSubject, metaSubject, metaSubjectAll } from "../subjects/index.ts";
import { decodeStoredMeta, header, H_DELETES_VERSION, isVersionMarker, NULL_VERSION, toObjectInfo, versionIdOf, type ObjectInfo, type StoredMeta } from "./format.ts";
import { leaderGet } from "./reader.ts";
import { SortedKeys, MAX_KEYS } from "./index.ts";
import type { StoreRef } from "./types.ts";

/** Bucket versioning state, as S3 names it ("" = never versioned). */
export type VersioningState = "" | "Enabled" | "Suspended";

/** A fresh version id: a nuid (22 characters of [0-9A-Za-z]). */
export function newVersionId(): string {
  return nuid.next();
}

/** Whether `v` could be a version id Shoal issued ("null" or a nuid-like token): the v1 codec's check. */
export const isVersionIdShape = isVersionId;

/** The version id a write gets under a bucket's versioning state (undefined: unversioned, no header). */
export function versionIdFor(state: VersioningState): string | undefined {
  return state === "Enabled" ? newVersionId() : state === "Suspended" ? NULL_VERSION : undefined;
}

export interface Version {
  versionId: string;
  /** Sequence of the message that holds this version now. */
  seq: number;
  /** Delete marker (a version without content). */
  marker: boolean;
  mtime: string;
  meta: StoredMeta;
  /** Object info (undefined for a marker or foreign metadata). */
  info: ObjectInfo | undefined;
}

/** One metadata message of a key, in stream order. */
export interface MetaMsg {
  seq: number;
  meta: StoredMeta;
}

/**
 * The versions a key's messages leave, oldest first (the last one is
 * current). Pure. `onDrop(seq, at)` tells when the message `seq` stopped
 * holding a version: at message index `at` (the sweep's read grace counts
 * from that message's time).
 */
export function foldVersions(msgs: readonly MetaMsg[], onDrop?: (seq: number, at: number) => void): Version[] {
  const out: Version[] = [];
  let at = 0;
  const drop = (id: string) => {
    const i = out.findIndex((v) => v.versionId === id);
    if (i < 0) return;
    // (not inside `onDrop?.(…)`: an optional call skips evaluating its arguments)
    const [gone] = out.splice(i, 1);
    onDrop?.(gone!.seq, at);
  };
  for (; at < msgs.length; at++) {
    const { seq, meta } = msgs[at]!;
    const deletes = header(meta, H_DELETES_VERSION);
    if (deletes !== undefined) drop(deletes);
    const id = versionIdOf(meta);
    if (meta.deleted && !isVersionMarker(meta)) {
      drop(NULL_VERSION);
      if (at + 1 < msgs.length) onDrop?.(seq, at + 1);
      continue;
    }
    drop(id);
    let info: ObjectInfo | undefined;
    if (!meta.deleted) {
      try {
        info = toObjectInfo(meta, seq);
      } catch {
        info = undefined;
      }
    }
    out.push({ versionId: id, seq, marker: meta.deleted === true, mtime: meta.mtime, meta, info });
  }
  return out;
}

/** Sequences of the messages that hold versions (the ones the sweep keeps). */
export function retainedSeqs(msgs: readonly MetaMsg[]): Set<number> {
  return new Set(foldVersions(msgs).map((v) => v.seq));
}

/**
 * Every metadata message of one key, oldest first, read from the stream
 * leader (what a decision about versions needs: an acknowledged write is
 * there). Bounded: a key with more than `max` messages is refused.
 */
export async function keyMessages(jsm: JetStreamManager, store: StoreRef, key: string, max = 100_000, from = 0): Promise<MetaMsg[]> {
  const subject = metaSubject(store.name, key);
  const out: MetaMsg[] = [];
  for (let after = from; out.length < max; ) {
    // the JetStream API's message get accepts next_by_subj (like Direct Get); the client's type lacks it
    const m = await leaderGet(jsm, store.stream, { seq: after + 1, next_by_subj: subject } as unknown as { seq: number });
    if (!m || m.subject !== subject) return out;
    try {
      out.push({ seq: m.seq, meta: decodeStoredMeta(m.data) });
    } catch {
      // foreign metadata: not a version
    }
    after = m.seq;
  }
  throw new ShoalError("InternalError", `key ${JSON.stringify(key.slice(0, 100))} has more than ${max} metadata messages`);
}

/** The versions of one key, oldest first. */
export async function keyVersions(jsm: JetStreamManager, store: StoreRef, key: string): Promise<Version[]> {
  return foldVersions(await keyMessages(jsm, store, key));
}

/** Every key's metadata messages in stream order (one ordered pass, up to the leader's last metadata message). */
export async function scanAllMetadata(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef, onMsg: (subject: string, seq: number, data: Uint8Array, ms: number) => void): Promise<void> {
  const filter = metaSubjectAll(store.name);
  const last = await leaderGet(jsm, store.stream, { last_by_subj: filter });
  if (!last) return;
  const consumer = await js.consumers.get(store.stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  const msgs = await consumer.consume();
  try {
    for await (const m of msgs) {
      onMsg(m.subject, m.seq, m.data, Math.floor(m.info.timestampNanos / 1e6));
      if (m.info.pending === 0 || m.seq >= last.seq) break;
    }
  } finally {
    await msgs.close().catch(() => undefined);
    dropOrdered(consumer);
  }
}

/** The versions of every key of a store (keys with none are left out). */
export async function allVersions(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef): Promise<Map<string, Version[]>> {
  const byKey = new Map<string, MetaMsg[]>();
  await scanAllMetadata(js, jsm, store, (subject, seq, data) => {
    let key: string;
    let meta: StoredMeta;
    try {
      key = keyFromMetaSubject(subject);
      meta = decodeStoredMeta(data);
    } catch {
      return;
    }
    let l = byKey.get(key);
    if (!l) byKey.set(key, (l = []));
    l.push({ seq, meta });
  });
  const out = new Map<string, Version[]>();
  for (const [k, msgs] of byKey) {
    const v = foldVersions(msgs);
    if (v.length > 0) out.set(k, v);
  }
  return out;
}

// --- ListObjectVersions ------------------------------------------------------------------

export interface VersionListOptions {
  prefix?: string;
  delimiter?: string;
  maxKeys?: number;
  keyMarker?: string;
  versionIdMarker?: string;
}

export interface VersionEntry {
  key: string;
  versionId: string;
  isLatest: boolean;
  deleteMarker: boolean;
  mtime: string;
  size: number;
  etag: string;
}

export interface VersionPage {
  versions: VersionEntry[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextKeyMarker?: string;
  nextVersionIdMarker?: string;
}

/**
 * S3 ListObjectVersions over every key's versions: keys in UTF-8 byte order,
 * each key's versions newest first; prefix and delimiter as in ListObjects
 * (a common prefix counts once toward maxKeys); key-marker alone starts
 * after that key, key-marker with version-id-marker after that version of
 * it. Pure.
 */
export function pageVersions(all: ReadonlyMap<string, readonly Version[]>, o: VersionListOptions): VersionPage {
  const prefix = o.prefix ?? "";
  const maxKeys = Math.min(Math.max(o.maxKeys ?? MAX_KEYS, 0), MAX_KEYS);
  const keys = [...all.keys()].filter((k) => k.startsWith(prefix)).sort(SortedKeys.compare);
  const page: VersionPage = { versions: [], commonPrefixes: [], isTruncated: false };
  let count = 0;
  let lastCp: string | undefined;
  const full = () => count >= maxKeys;
  for (const k of keys) {
    const km = o.keyMarker;
    if (km !== undefined && km !== "") {
      const c = SortedKeys.compare(k, km);
      if (c < 0 || (c === 0 && (o.versionIdMarker === undefined || o.versionIdMarker === ""))) continue;
    }
    const d = o.delimiter ? k.indexOf(o.delimiter, prefix.length) : -1;
    if (o.delimiter && d >= 0) {
      const cp = k.slice(0, d + o.delimiter.length);
      if (cp === lastCp) continue;
      if (km !== undefined && km !== "" && SortedKeys.compare(cp, km) <= 0 && km.startsWith(cp)) continue;
      if (full()) {
        page.isTruncated = true;
        break;
      }
      page.commonPrefixes.push(cp);
      lastCp = cp;
      count++;
      page.nextKeyMarker = cp;
      page.nextVersionIdMarker = undefined;
      continue;
    }
    const vs = [...all.get(k)!].reverse();
    let start = 0;
    if (km === k && o.versionIdMarker) {
      const i = vs.findIndex((v) => v.versionId === o.versionIdMarker);
      if (i < 0) throw new ShoalError("InvalidArgument", "Invalid version id specified");
      start = i + 1;
    }
    for (let i = start; i < vs.length; i++) {
      if (full()) {
        page.isTruncated = true;
        break;
      }
      const v = vs[i]!;
      page.versions.push({ key: k, versionId: v.versionId, isLatest: i === 0, deleteMarker: v.marker, mtime: v.mtime, size: v.info?.size ?? 0, etag: v.info?.etag ?? "" });
      count++;
      page.nextKeyMarker = k;
      page.nextVersionIdMarker = v.versionId;
    }
    if (page.isTruncated) break;
  }
  if (!page.isTruncated) {
    delete page.nextKeyMarker;
    delete page.nextVersionIdMarker;
  } else if (page.nextVersionIdMarker === undefined) delete page.nextVersionIdMarker;
  return page;
}

/**
 * One version's object info (GET/HEAD ?versionId=): NoSuchVersion when the
 * key has no such version, MethodNotAllowed for a delete marker (as S3,
 * detail `deleteMarker`). "null" names the version written while the bucket
 * was unversioned or suspended.
 */
export async function statVersion(jsm: JetStreamManager, store: StoreRef, key: string, versionId: string): Promise<ObjectInfo> {
  const v = (await keyVersions(jsm, store, key)).find((x) => x.versionId === versionId);
  if (!v) throw new ShoalError("NoSuchVersion", undefined, { detail: { key: key.slice(0, 256), versionId } });
  if (v.marker || !v.info) throw new ShoalError("MethodNotAllowed", "the version is a delete marker", { detail: { deleteMarker: true, versionId } });
  return v.info;
}
