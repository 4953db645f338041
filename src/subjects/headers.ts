/**
 * NATS headers of the v1 object API (documented in docs/api.md).
 */
export const H = {
  /** Object key (UTF-8) on PUT. */
  key: "Shoal-Key",
  /**
   * The key as base64 of its UTF-8, sent instead of Shoal-Key when a header
   * cannot carry it as is: NATS header values cannot hold CR or LF and lose
   * leading and trailing whitespace.
   */
  keyB64: "Shoal-Key-B64",
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
  /**
   * On put: what the ETag is — "md5" (the default: the body's MD5, as S3
   * gives a single PUT) or "sha256" (`<first 16 bytes of the SHA-256, hex>-1`,
   * which S3 tools read as not an MD5; the writer then computes no MD5 unless
   * Content-MD5 asks it to verify one).
   */
  etagKind: "Shoal-Etag-Kind",
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
  /** The object's CRC-32 (8 hex digits), when Shoal recorded one. */
  crc32Reply: "Shoal-Crc32",
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
  /** On GET/HEAD replies and put/copy/complete results: the version's id (versioned buckets; "null" for a write while suspended). */
  versionId: "Shoal-Version-Id",
} as const;

/** The header(s) that carry an object key on PUT: Shoal-Key, or Shoal-Key-B64 when the raw key would not survive a NATS header. */
export function keyHeader(key: string): Record<string, string> {
  return /[\r\n]|^\s|\s$/.test(key) ? { [H.keyB64]: Buffer.from(key, "utf8").toString("base64") } : { [H.key]: key };
}

/** The key sent with keyHeader (undefined when neither header is there; a malformed Shoal-Key-B64 gives undefined too). */
export function keyFromHeaders(get: (name: string) => string | undefined): string | undefined {
  const b64 = get(H.keyB64);
  if (b64 === undefined) return get(H.key);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(b64, "base64"));
  } catch {
    return undefined;
  }
}
