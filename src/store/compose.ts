/**
 * Copy-free multipart completion (issue 15): a completed upload becomes a
 * version whose bytes are its parts' chunks, committed with one metadata
 * message, whatever its size; the stock form follows in the background.
 *
 * - `composeObject` commits the version: metadata (`Shoal-Parts`, format.ts)
 *   listing each part's chunk subject, sequences, size and SHA-256, with
 *   the compare-and-set, request id and version id of any commit
 *   (writer.ts commitChunks). No byte is read or copied. Shoal reads it at
 *   once (reader.ts readParts: each part checked against its own SHA-256).
 *   The stock object-store format has one chunk subject per object, so the
 *   message says `deleted: true` to stock readers: `nats object get` and
 *   @nats-io/obj answer "not found" (and `list` leaves the key out) until
 *   the copy below has run.
 * - `restateComposed` is that copy: the parts' bytes once more, onto one
 *   chunk subject, hashed on the way (the object's SHA-256); then the same
 *   version again in the stock form, marked `Shoal-Restates: <revision>`,
 *   compare-and-set on the composed commit. It restates only the key's
 *   current version: a composed version that a newer write replaced first
 *   stays composed (stock tools never see non-current versions), and in an
 *   unversioned bucket the sweep removes it with its parts as any replaced
 *   version. The restatement is not a new change: the replicator emits no
 *   event for it and does not copy it again (actors/replicator/logic.ts,
 *   replication.ts). The storage actor restates right after answering the
 *   completion, and its sweep restates any composed current version it finds
 *   (a restatement interrupted by a crash). Two restatements racing write two
 *   copies; one commit wins and the other's chunks are removed.
 * - The parts' chunks belong to the composed version from the commit on: the
 *   sweep counts them as referenced by it (sweep.ts chunkRefs) and removes
 *   them when the version is replaced and past the read grace period —
 *   after a restatement, the composed message is replaced by its own copy.
 */
import { nuid } from "@nats-io/nats-core";
import { publish } from "../jet/index.ts";
import { metaSubject } from "../subjects/index.ts";
import { ShoalError } from "../errors/index.ts";
import { buildHeaders, decodeStoredMeta, DIGEST_PREFIX, H_CRC32, H_PARTS, header, toObjectInfo, type ObjectInfo, type PartRef, type StoredMeta } from "./format.ts";
import { lastOnSubject, readObject } from "./reader.ts";
import { apiCode, commitChunks, headWithRetry, removeChunks, timingOf, writeChunks } from "./writer.ts";
import type { Jet, PutOptions, StoreRef } from "./types.ts";

/**
 * Most parts a composed version lists: its metadata must fit in one message
 * (~110 bytes a part: 2000 parts ≈ 220 KB, under the default 1 MB
 * max_payload). Larger uploads are completed by copying (multipart.ts).
 */
export const MAX_COMPOSED_PARTS = 2000;

/** Commits `parts` (in order) as `key`'s new version without copying a byte. */
export async function composeObject(jet: Jet, store: StoreRef, key: string, parts: PartRef[], opts: PutOptions): Promise<ObjectInfo> {
  if (parts.length === 0 || parts.length > MAX_COMPOSED_PARTS) throw new ShoalError("InternalError", `a composed object holds 1 to ${MAX_COMPOSED_PARTS} parts`);
  const timing = timingOf(opts);
  const prev = await headWithRetry(jet.jsm, store, key, timing);
  const size = parts.reduce((a, p) => a + p.size, 0);
  return commitChunks(jet, store, key, { id: nuid.next(), seqs: [], size, chunkSize: parts[0]!.chunkSize, md5hex: "", sha256: "", parts }, opts, timing, prev);
}

export type RestateOutcome = "restated" | "not-current" | "not-composed";

/**
 * Copies the composed version committed at `revision` onto one chunk
 * subject and commits it again in the stock form (see the header), if it is
 * still the key's current version. Idempotent: a version already restated,
 * replaced or deleted is left alone.
 */
export async function restateComposed(jet: Jet, store: StoreRef, key: string, revision: number, o: { signal?: AbortSignal } = {}): Promise<RestateOutcome> {
  const subject = metaSubject(store.name, key);
  const m = await lastOnSubject(jet.jsm, store, subject);
  if (!m || m.seq !== revision) return "not-current";
  const meta = decodeStoredMeta(m.data);
  if (meta.deleted || header(meta, H_PARTS) === undefined) return "not-composed";
  const info = toObjectInfo(meta, m.seq);
  const w = await writeChunks(jet, store, readObject(jet.jsm, store, info, o.signal ? { signal: o.signal } : {}), {
    md5: false,
    chunkSize: info.chunkSize,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  if (w.size !== info.size) {
    await removeChunks(jet.jsm, store, w.id).catch(() => undefined);
    throw new ShoalError("InternalError", `the parts of ${JSON.stringify(key.slice(0, 256))} hold ${w.size} bytes, not ${info.size}`);
  }
  const stock: StoredMeta = {
    ...meta,
    headers: {
      ...Object.fromEntries(Object.entries(meta.headers ?? {}).filter(([k]) => k.toLowerCase() !== H_PARTS.toLowerCase() && k.toLowerCase() !== H_CRC32.toLowerCase())),
      ...buildHeaders({ etag: info.etag, contentType: info.contentType, chunkSeqs: w.seqs, restates: revision, ...(w.crc32 ? { crc32: { crc: w.crc32, nuid: w.id } } : {}) }),
    },
    options: { ...meta.options, max_chunk_size: w.chunkSize },
    nuid: w.id,
    chunks: w.seqs.length,
    digest: `${DIGEST_PREFIX}${w.sha256}`,
    deleted: false,
  };
  try {
    await publish(jet.js, subject, JSON.stringify(stock), { msgId: `${w.id}.m0`, expectLastSubjectSeq: revision, attemptMs: 1000, deadlineMs: 15_000, ...(o.signal ? { signal: o.signal } : {}) });
  } catch (e) {
    // refused (replaced meanwhile): the copy is nobody's; no answer: the sweep decides
    if (apiCode(e) !== undefined) {
      // ...unless an earlier attempt of this publish landed and only its
      // answer was lost: the retry (same message id) is then refused as out
      // of date, since nats-server checks the expected last sequence before
      // the message id (measured on 2.15.1). Removing the chunks then left
      // the current version without them (CI: an awscli ranged GET got
      // "chunk 0 … is missing" on every retry).
      let now;
      try {
        now = await lastOnSubject(jet.jsm, store, subject);
      } catch {
        throw e; // cannot tell: the sweep decides
      }
      if (now && now.seq > revision && landedHere(now.data, w.id)) return "restated";
      await removeChunks(jet.jsm, store, w.id).catch(() => undefined);
      return "not-current";
    }
    throw e;
  }
  return "restated";
}

/** Whether stored metadata is the version whose chunks are `nuid`'s. */
function landedHere(data: Uint8Array, nuid: string): boolean {
  try {
    return decodeStoredMeta(data).nuid === nuid;
  } catch {
    return false;
  }
}
