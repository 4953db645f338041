/**
 * The store's shared types, in one leaf module, so that no two files of
 * src/store import each other for a type (issue 15's structure item): the
 * writer, the claim check, the reader, the index and the sweep all take
 * these from here.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { CommitSource, ObjectInfo, PartRef } from "./format.ts";

/** The three handles the store needs from one connection. */
export interface Jet {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export interface StoreRef {
  /** Object store name (`<token>[__<shard>]`). */
  name: string;
  /** Backing stream (`OBJ_<name>`). */
  stream: string;
}

export interface PutOptions {
  contentType?: string;
  userMeta?: Record<string, string>;
  /** Bytes per chunk (clamped to the server's max_payload). */
  chunkSize?: number;
  /** Most bytes published but not yet acknowledged. */
  windowBytes?: number;
  /** Fail with PreconditionFailed when a live object has this key. */
  ifNoneMatch?: boolean;
  /** Fail with PreconditionFailed unless the live object's ETag is this. */
  ifMatch?: string;
  /** Verify the body against these before committing (BadDigest otherwise). */
  expectMd5Hex?: string;
  expectSha256B64?: string;
  /** Refuse bodies larger than this (EntityTooLarge), checked while streaming. */
  maxSize?: number;
  /** Use this ETag instead of the body's MD5 (multipart: md5-of-md5s-N). */
  etagOverride?: string;
  /**
   * "sha256": the ETag is derived from the SHA-256 (format.ts sha256Etag)
   * and no MD5 is computed, unless expectMd5Hex asks for one to be verified
   * (the ETag is then that MD5). Default "md5".
   */
  etag?: "md5" | "sha256";
  /** A replicated copy: the source commit it copies (Shoal-Source). */
  source?: CommitSource;
  signal?: AbortSignal;
  /** How long one publish may keep retrying (through a stream-leader failover) before the put fails. */
  timeoutMs?: number;
  /** Ack deadline of one publish attempt. */
  attemptTimeoutMs?: number;
  /**
   * The client call's id, the same on each of its retries: stored with the
   * version, so a retry of a put that committed (its reply lost) returns that
   * commit instead of committing — and announcing — the object twice.
   */
  requestId?: string;
  /**
   * No commit is published after this time (epoch ms): the write fails with
   * ServiceUnavailable and leaves nothing (writer.ts COMMIT_WINDOW_MS). By
   * default COMMIT_WINDOW_MS after the write's input was complete: the call
   * of putBytes, the start of commitChunks.
   */
  commitBy?: number;
  /**
   * The version id to write (`Shoal-Version-Id`): a fresh id in a versioned
   * bucket, "null" while versioning is suspended, the source's id on a
   * replicated copy; undefined in an unversioned bucket (no header).
   */
  versionId?: string;
}

/** Publish deadlines: one attempt, and all attempts of one message. */
export interface PublishTiming {
  attemptMs: number;
  deadlineMs: number;
  signal?: AbortSignal;
}

/** Chunks written under one nuid, not yet referenced by any metadata. */
export interface WrittenChunks {
  id: string;
  seqs: number[];
  size: number;
  chunkSize: number;
  md5hex: string;
  /** Base64url SHA-256, padded (ADR-20 digest form); "" for a composed object. */
  sha256: string;
  /** CRC-32 of the bytes, 8 lower-case hex digits (what Shoal's whole-object reads check); absent when the writer did not say (an older SDK's direct upload) or for a composed object. */
  crc32?: string;
  /**
   * A composed multipart object (src/store/compose.ts): its bytes are these
   * parts' chunks; `id` then names no chunks and `seqs` is empty.
   */
  parts?: PartRef[];
}

export interface ChunkOptions {
  /** The nuid to write under (a direct upload the storage actor announced); a fresh one otherwise. */
  id?: string;
  chunkSize?: number;
  windowBytes?: number;
  maxSize?: number;
  signal?: AbortSignal;
  timing?: PublishTiming;
  /** Compute the MD5 (default); false when the ETag will not be the body's MD5 (md5hex is then ""). */
  md5?: boolean;
}

export interface Head {
  /** The live object, or undefined when the key has none (absent or deleted). */
  info: ObjectInfo | undefined;
  /** Revision of the live object. */
  revision: number | undefined;
  /** Revision of a delete marker, when that is the key's last message. */
  markerRevision: number | undefined;
  /** The request id the delete marker was written with, if any. */
  markerRequestId?: string;
  /** The delete marker's version id, when it is a version (versioned bucket). */
  markerVersionId?: string;
}
