/**
 * The object-change event: its wire format, shared by the replicator that
 * publishes it and the SDK that reads it (docs/events.md).
 */
export type EventKind = "created" | "deleted";

/** The JSON body of an object-change event (docs/events.md). */
export interface ObjectEvent {
  v: 1;
  /**
   * S3 event names: s3:ObjectCreated:Put (a put, copy or replicated
   * copy), s3:ObjectCreated:CompleteMultipartUpload (a multipart upload's
   * completion), s3:ObjectRemoved:Delete (an object, or in a versioned
   * bucket the version `versionId`, removed),
   * s3:ObjectRemoved:DeleteMarkerCreated (a versioned bucket's delete).
   */
  eventName: "s3:ObjectCreated:Put" | "s3:ObjectCreated:CompleteMultipartUpload" | "s3:ObjectRemoved:Delete" | "s3:ObjectRemoved:DeleteMarkerCreated";
  /** When the change was committed (the metadata message's time). */
  eventTime: string;
  bucket: string;
  key: string;
  /** Bytes, 0 for a delete. */
  size: number;
  /** ETag (MD5 hex, or `<md5>-<N>` for multipart); absent for a delete. */
  etag?: string;
  /** Base64url SHA-256 of the body; absent for a delete, "" for a composed multipart object (docs/events.md). */
  sha256?: string;
  contentType?: string;
  /** In a versioned (or suspended) bucket: the version created, the delete marker's id, or the version removed. */
  versionId?: string;
  /** Orders changes to one key: the source stream sequence as 16 hex digits (compare as strings). */
  sequencer: string;
  /** The commit's stream sequence (the object's revision for a create). */
  revision: number;
  /**
   * Where the change was read: the bucket's stream, its incarnation (a
   * bucket deleted and created again is a new incarnation whose sequences
   * start again at 1) and the message's sequence.
   */
  source: { stream: string; incarnation: string; seq: number };
}

