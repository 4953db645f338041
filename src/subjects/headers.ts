/**
 * NATS headers of the v1 object API (documented in docs/api.md).
 */
export const H = {
  /** Object key (UTF-8) on PUT. */
  key: "Shoal-Key",
  /** "1" on a PUT request that will stream its body (reply: transfer subject). */
  stream: "Shoal-Stream",
  /**
   * "1" on a PUT request whose writer publishes the chunks into the stream
   * itself (reply: a direct-upload offer); "1" on a GET reply whose payload is
   * a direct-read descriptor (the reader fetches the chunks itself).
   */
  direct: "Shoal-Direct",
  /** "1" on the message that commits a direct upload (a request; on the session subject). */
  commit: "Shoal-Commit",
  contentType: "Content-Type",
  /** Base64 MD5 of the body: verified before commit (BadDigest). */
  contentMd5: "Content-MD5",
  /** Base64 SHA-256 of the body: verified before commit (BadDigest). */
  sha256: "Shoal-Sha256",
  ifMatch: "If-Match",
  ifNoneMatch: "If-None-Match",
  /** Multipart: the upload a part belongs to, and its number (1–10000). */
  uploadId: "Shoal-Upload-Id",
  partNumber: "Shoal-Part-Number",
  /** User metadata prefix: `Shoal-Meta-<name>`. */
  metaPrefix: "Shoal-Meta-",
  // replies
  size: "Shoal-Size",
  objectSize: "Shoal-Object-Size",
  etag: "Shoal-Etag",
  sha256Reply: "Shoal-Sha256",
  mtime: "Shoal-Mtime",
  revision: "Shoal-Revision",
  contentRange: "Shoal-Content-Range",
  /** On a GET reply: "1" when the body is in this reply, "0" when it streams to the inbox. */
  inline: "Shoal-Inline",
  /**
   * The caller's id for one call, the same on each of its retries (1–128 of
   * A–Z a–z 0–9 . _ : -; anything else is replaced). Logged, and stored with
   * what a put, copy or delete commits, so a retry finds its own commit.
   */
  requestId: "Shoal-Request-Id",
} as const;
