/**
 * The SDK's public types: what its calls take and return. Shared by the
 * facade (./index.ts) and the modules behind it, so that none of them
 * imports another for a type.
 */
import type { Readable } from "node:stream";
import type * as v1 from "../subjects/v1.ts";
import type { ObjectEvent } from "../subjects/events.ts";

/** Bodies up to this size go inline in one request. */
export const INLINE_PUT_MAX = 512 * 1024;

export type Body = Uint8Array | string | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | NodeJS.ReadableStream;

export type ObjectMeta = v1.ObjectMeta;

export interface GetResult {
  info: ObjectMeta;
  /** Size of what `body` yields (the range, or the whole object). */
  length: number;
  /** `bytes a-b/size` when a range was served. */
  contentRange: string | undefined;
  body: AsyncIterable<Uint8Array>;
  /** The body as a Node Readable. */
  stream(): Readable;
  /** The body collected (only for small objects!). */
  bytes(): Promise<Uint8Array>;
}

export type Conditions = v1.ConditionsInput;

/**
 * A put's options: the v1 API's put input (content type, metadata,
 * ifNoneMatch/ifMatch, contentMd5 and sha256 — verified by the service:
 * BadDigest with detail `{digest}`), and what stays in the SDK.
 */
export interface PutOptions extends v1.PutInput {
  signal?: AbortSignal;
  /** Flow-control window of a streamed upload. */
  windowBytes?: number;
}

export type GetOptions = Conditions & { range?: string; windowBytes?: number; signal?: AbortSignal; versionId?: string };

export type CopyOptions = Conditions & { metadataDirective?: "COPY" | "REPLACE"; contentType?: string; metadata?: Record<string, string> };

export interface DeleteResult {
  deleted: boolean;
  versionId?: string;
  deleteMarker?: boolean;
}

export interface DeleteManyResult {
  deleted: string[];
  errors: Array<{ key: string; code: string; message: string }>;
}

/** One key of a listing: the store's own type (the wire carries it as is). */
export type { ListEntry } from "../store/index.ts";
import type { ListEntry } from "../store/index.ts";

export interface ListPage {
  contents: ListEntry[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextContinuationToken?: string;
  keyCount: number;
}

/** A LIST's options, as the storage actor's list index takes them (one definition). */
export type { ListOptions } from "../store/index.ts";

export interface BucketInfo {
  name: string;
  replicas: number;
  created: string;
  objects?: number;
  bytes?: number;
  cluster?: { leader: string | null; replicas: Array<{ name: string; current: boolean; offline: boolean; lag: number }> } | null;
}

export interface PartInfo {
  partNumber: number;
  etag: string;
  size: number;
  lastModified: string;
}

export interface PartList {
  bucket: string;
  key: string;
  uploadId: string;
  parts: PartInfo[];
  isTruncated: boolean;
  nextPartNumberMarker?: number;
}

export interface UploadList {
  bucket: string;
  prefix: string;
  uploads: Array<{ key: string; uploadId: string; initiated: string }>;
  commonPrefixes: string[];
  isTruncated: boolean;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
}

export interface UploadListOptions {
  prefix?: string;
  delimiter?: string;
  keyMarker?: string;
  uploadIdMarker?: string;
  maxUploads?: number;
}

export interface EventsOptions {
  /** One bucket's events; all buckets when absent. */
  bucket?: string;
  /** Only keys with this prefix (filtered here: keys are not in the subject). */
  prefix?: string;
  /** Where to start: a time, an events-stream sequence, "all" (everything kept), or "new" (default). */
  from?: Date | number | "all" | "new";
  /** A durable consumer name: resumes where it left off, each event acknowledged after it is yielded. */
  durable?: string;
  signal?: AbortSignal;
}

/** An event as delivered: the event body plus its sequence in SHOAL_EVENTS. */
export type DeliveredEvent = ObjectEvent & { seq: number };

export interface ClientOptions {
  /** Per-attempt timeout of a request. */
  timeoutMs?: number;
  /** Overall deadline of a retried (idempotent) call. */
  deadlineMs?: number;
  /**
   * Move large bodies straight between this client and the bucket's stream
   * (default true; the storage actor still decides, names, verifies and
   * commits — src/client/direct.ts). false sends every byte through the
   * storage actor. Clients whose NATS permissions do not reach the stream
   * fall back to the actor by themselves.
   */
  direct?: boolean;
  /**
   * The ETag of objects this client puts (PutOptions.etag overrides it):
   * "md5" (default) is the body's MD5, as S3 gives a single PUT; "sha256"
   * is `<first 16 bytes of the SHA-256, hex>-1` and spares every large put
   * its MD5 (the single largest CPU cost of a put: docs/benchmarks.md). S3
   * tools read an ETag with "-" as not an MD5. Uploads through the S3
   * gateway always get MD5 ETags.
   */
  etag?: "md5" | "sha256";
}
