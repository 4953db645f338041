/**
 * Lifecycle expiration: the rules of PutBucketLifecycleConfiguration
 * (stored in KV `shoal_bucket_settings`, see bucketsettings.ts) applied to
 * a bucket's objects and multipart uploads. The replicator runs a pass every
 * hour and on request (`shoal.ctl.replicator.lifecycle`); the decisions are
 * pure functions of (rules, object, now), so tests inject the clock.
 *
 * - Expiration Days: a current object expires at the first midnight UTC
 *   after mtime + Days (S3's rounding); Date: from that midnight on.
 * - AbortIncompleteMultipartUpload: an upload is aborted at the first
 *   midnight UTC after its start + DaysAfterInitiation.
 * - NoncurrentVersionExpiration NoncurrentDays: a non-current version is
 *   removed for good (as DELETE ?versionId=) at the first midnight UTC after
 *   the time it became non-current (the next version's mtime) + Days.
 * - In a versioned (or suspended) bucket an Expiration adds a delete marker
 *   (the expired version stays, non-current), as S3 does.
 *
 * An expiration is a compare-and-set on the key's last metadata message:
 * the delete marker is written only if the version that was judged expired
 * is still the current one, so a write that lands between the listing and
 * the delete is never removed. Expirations are ordinary deletes for
 * everything downstream (list index, events, replication).
 */
import { nuid } from "@nats-io/nats-core";
import { isConflict, publish } from "../jet/index.ts";
import type { ShoalClient } from "../client/index.ts";
import type { Logger } from "../log.ts";
import { metaSubject } from "../subjects/index.ts";
import type { BucketSettings, LifecycleRule } from "./bucketsettings.ts";
import { storeRef } from "./bucket.ts";
import { headObject } from "./reader.ts";
import { DEFAULT_PUBLISH_TIMING, removeChunks } from "./writer.ts";
import type { Jet } from "./types.ts";
import { H_DELETE_MARKER, H_REQUEST_ID, H_VERSION_ID, chunkRefs } from "./format.ts";
import { allVersions, versionIdFor, type Version } from "./versions.ts";
import { deleteVersion } from "./writer.ts";


/** The first midnight UTC at least `days` days after `t` (S3 rounds lifecycle times up to midnight). */
export function midnightAfter(t: Date, days: number): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate() + days + 1));
}

/** Whether the rules expire a current object with this key and last-modified time at `now`. */
export function expiresNow(rules: readonly LifecycleRule[], key: string, mtime: Date, now: Date): boolean {
  return rules.some((r) => {
    if (!r.enabled || !key.startsWith(r.prefix)) return false;
    if (r.expirationDays !== undefined && now >= midnightAfter(mtime, r.expirationDays)) return true;
    return r.expirationDate !== undefined && now >= new Date(r.expirationDate);
  });
}

/** Whether the rules abort a multipart upload of this key begun at `initiated`, at `now`. */
export function abortsNow(rules: readonly LifecycleRule[], key: string, initiated: Date, now: Date): boolean {
  return rules.some((r) => r.enabled && key.startsWith(r.prefix) && r.abortIncompleteDays !== undefined && now >= midnightAfter(initiated, r.abortIncompleteDays));
}

/**
 * Deletes `key` if its current version is still `revision` (the revision
 * users see: a composed object's stock copy keeps its completion's): true
 * when this call expired it, false when the key changed (or went)
 * meanwhile. The delete is compare-and-set on the key's last message.
 */
export async function expireIfUnchanged(jet: Jet, bucket: string, key: string, revision: number, versionId?: string): Promise<boolean> {
  const store = storeRef(bucket);
  const prev = await headObject(jet.jsm, store, key);
  if (!prev?.info || prev.revision === undefined || prev.info.revision !== revision) return false;
  // the same delete marker as writer.deleteObject writes
  const id = `lifecycle.${nuid.next()}`;
  const headers: Record<string, string[]> = { [H_REQUEST_ID]: [id], ...(versionId !== undefined ? { [H_VERSION_ID]: [versionId], [H_DELETE_MARKER]: ["1"] } : {}) };
  const marker = { name: key, bucket: store.name, nuid: prev.info.nuid, size: 0, chunks: 0, digest: "", mtime: new Date().toISOString(), deleted: true, options: { max_chunk_size: prev.info.chunkSize }, headers };
  try {
    await publish(jet.js, metaSubject(store.name, key), JSON.stringify(marker), { msgId: id, attemptMs: DEFAULT_PUBLISH_TIMING.attemptMs, deadlineMs: DEFAULT_PUBLISH_TIMING.deadlineMs, expectLastSubjectSeq: prev.revision });
  } catch (e) {
    // a newer write (or delete) won the compare-and-set: that one stays
    if (isConflict(e)) return false;
    throw e;
  }
  // a versioned bucket keeps the expired version (non-current now)
  if (versionId === undefined) for (const c of chunkRefs(prev.info)) await removeChunks(jet.jsm, store, c.nuid).catch(() => undefined);
  return true;
}

/**
 * Non-current versions of one key that the rules expire at `now`: version i
 * (oldest first; the last is current) became non-current when version i+1
 * was written. Pure.
 */
export function noncurrentExpired(rules: readonly LifecycleRule[], key: string, versions: readonly Pick<Version, "versionId" | "mtime">[], now: Date): string[] {
  const days = rules.filter((r) => r.enabled && r.noncurrentDays !== undefined && key.startsWith(r.prefix)).map((r) => r.noncurrentDays!);
  if (days.length === 0) return [];
  const out: string[] = [];
  for (let i = 0; i + 1 < versions.length; i++) {
    const since = new Date(versions[i + 1]!.mtime);
    if (days.some((d) => now >= midnightAfter(since, d))) out.push(versions[i]!.versionId);
  }
  return out;
}

export interface LifecycleReport {
  buckets: number;
  expired: number;
  /** Non-current versions removed (NoncurrentVersionExpiration). */
  noncurrentExpired: number;
  aborted: number;
  errors: number;
}

/**
 * One pass over every bucket that has lifecycle rules. `client` lists
 * (through the storage service, so the listing sees every acknowledged
 * write) and aborts uploads; expirations go straight to the stream with
 * compare-and-set (expireIfUnchanged).
 */
export async function runLifecycle(o: { client: ShoalClient; jet: Jet; settings: BucketSettings; now: Date; log: Logger; signal?: AbortSignal }): Promise<LifecycleReport> {
  const report: LifecycleReport = { buckets: 0, expired: 0, noncurrentExpired: 0, aborted: 0, errors: 0 };
  for (const b of await o.client.listBuckets()) {
    if (o.signal?.aborted) break;
    const rules = (await o.settings.get(b.name, "lifecycle").catch(() => undefined))?.filter((r) => r.enabled);
    if (!rules?.length) continue;
    report.buckets++;
    try {
      const state = (await o.settings.get(b.name, "versioning")) ?? "";
      const expiring = rules.filter((r) => r.expirationDays !== undefined || r.expirationDate !== undefined);
      // one listing per distinct prefix; a key under two prefixes is judged twice (harmless: the second finds it gone)
      for (const prefix of new Set(expiring.map((r) => r.prefix))) {
        let token: string | undefined;
        do {
          if (o.signal?.aborted) return report;
          const page = await o.client.listPage(b.name, { prefix, maxKeys: 1000, ...(token ? { continuationToken: token } : {}) });
          for (const c of page.contents) {
            if (!expiresNow(expiring, c.key, new Date(c.mtime), o.now)) continue;
            if (await expireIfUnchanged(o.jet, b.name, c.key, c.revision, versionIdFor(state))) report.expired++;
          }
          token = page.isTruncated ? page.nextContinuationToken : undefined;
        } while (token);
      }
      if (rules.some((r) => r.noncurrentDays !== undefined)) {
        // every version of the bucket (one pass over its metadata); a removal is DELETE ?versionId=
        const store = storeRef(b.name);
        for (const [key, versions] of await allVersions(o.jet.js, o.jet.jsm, store)) {
          if (o.signal?.aborted) return report;
          for (const id of noncurrentExpired(rules, key, versions, o.now)) {
            if ((await deleteVersion(o.jet, store, key, id, DEFAULT_PUBLISH_TIMING, `lifecycle.${id}`)).deleted) report.noncurrentExpired++;
          }
        }
      }
      if (rules.some((r) => r.abortIncompleteDays !== undefined)) {
        let keyMarker: string | undefined;
        let uploadIdMarker: string | undefined;
        for (let pages = 0; pages < 10_000; pages++) {
          const l = await o.client.listMultipartUploads(b.name, { maxUploads: 1000, ...(keyMarker ? { keyMarker } : {}), ...(uploadIdMarker ? { uploadIdMarker } : {}) });
          for (const u of l.uploads) {
            if (abortsNow(rules, u.key, new Date(u.initiated), o.now) && (await o.client.abortMultipart(b.name, u.key, u.uploadId)).aborted) report.aborted++;
          }
          if (!l.isTruncated || !l.nextKeyMarker) break;
          keyMarker = l.nextKeyMarker;
          uploadIdMarker = l.nextUploadIdMarker;
        }
      }
    } catch (e) {
      report.errors++;
      o.log.warn({ err: e, bucket: b.name }, "lifecycle pass failed for a bucket; the next pass retries");
    }
  }
  return report;
}
