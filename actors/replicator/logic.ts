/**
 * Pure decisions of the replicator: what event a commit-log message is, and
 * the ids that make publishing it exactly-once. No I/O; unit-tested.
 */
import { PARTS_META, bucketFromToken, keyFromMetaSubject } from "../../src/subjects/index.ts";
import { decodeStoredMeta, header, H_DELETES_VERSION, H_VERSION_ID, isVersionMarker, toObjectInfo, type ObjectInfo } from "../../src/store/format.ts";
import type { EventKind, ObjectEvent } from "../../src/subjects/events.ts";

/**
 * Nats-Msg-Id of the event for a commit: the same commit always yields the
 * same id, and no other commit does — the stream's incarnation is part of it,
 * because a bucket deleted and created again restarts its sequences at 1
 * (an id of the sequence alone made the new bucket's first events look like
 * duplicates of the old one's and JetStream dropped them).
 */
export function eventMsgId(stream: string, incarnation: string, seq: number): string {
  return `${stream}:${incarnation}:${seq}`;
}

/**
 * An object a multipart upload made: composed of its parts, or copied from
 * them (a multipart ETag and the part sizes a completion records). A
 * CopyObject of one has the MD5 of its bytes as ETag: a put.
 */
export function isMultipart(info: ObjectInfo): boolean {
  return info.parts !== undefined || (info.userMeta[PARTS_META] !== undefined && /-\d+$/.test(info.etag));
}

export const sequencer = (seq: number) => seq.toString(16).toUpperCase().padStart(16, "0");

/**
 * The event a metadata message stands for, or undefined for a message that
 * is not Shoal/ADR-20 metadata (it is skipped, not an error).
 */
export function eventFor(stream: string, incarnation: string, subject: string, seq: number, timeMs: number, data: Uint8Array, bucketToken: string): { kind: EventKind; event: ObjectEvent } | undefined {
  let key: string;
  let meta;
  try {
    key = keyFromMetaSubject(subject);
    meta = decodeStoredMeta(data);
  } catch {
    return undefined;
  }
  const base = {
    v: 1 as const,
    eventTime: new Date(timeMs).toISOString(),
    bucket: bucketFromToken(bucketToken),
    key,
    sequencer: sequencer(seq),
    revision: seq,
    source: { stream, incarnation, seq },
  };
  // versioned buckets: the version a change made or removed
  const removed = header(meta, H_DELETES_VERSION);
  if (removed !== undefined) return { kind: "deleted", event: { ...base, eventName: "s3:ObjectRemoved:Delete", size: 0, versionId: removed } };
  const versionId = header(meta, H_VERSION_ID);
  if (isVersionMarker(meta)) return { kind: "deleted", event: { ...base, eventName: "s3:ObjectRemoved:DeleteMarkerCreated", size: 0, ...(versionId !== undefined ? { versionId } : {}) } };
  if (meta.deleted) return { kind: "deleted", event: { ...base, eventName: "s3:ObjectRemoved:Delete", size: 0 } };
  let info;
  try {
    info = toObjectInfo(meta, seq);
  } catch {
    return undefined;
  }
  // a composed object's stock form (src/store/compose.ts): the same version again, not a change
  if (info.restates !== undefined) return undefined;
  return {
    kind: "created",
    event: { ...base, eventName: isMultipart(info) ? "s3:ObjectCreated:CompleteMultipartUpload" : "s3:ObjectCreated:Put", size: info.size, etag: info.etag, sha256: info.sha256, contentType: info.contentType, ...(versionId !== undefined ? { versionId } : {}) },
  };
}
