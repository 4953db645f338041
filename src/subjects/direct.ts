/**
 * Payloads of the direct data path (docs/api.md, "Direct"), shared by the
 * storage actor that sends them and the SDK that reads them.
 */

/** Reply to a PUT with `Shoal-Direct: 1`: where and how the writer publishes its chunks. */
export type DirectOffer = {
  v: 1;
  /** Session subject: keepalives, then the commit request or an abort. */
  subject: string;
  stream: string;
  /** Object store name (the `<store>` of `$O.<store>.C.<nuid>`). */
  store: string;
  nuid: string;
  chunkSubject: string;
  chunkSize: number;
  idleMs: number;
  /** The commit may carry `crc32` (an actor that predates it refuses unknown fields, so a writer sends it only when offered). */
  crc32?: true;
  /** The commit may leave out `md5` when the put asked for an ETag from the SHA-256 (an actor that predates it requires one). */
  sha256Etag?: true;
  /** The commit may carry `seqs`, the chunks' sequences from the writer's acks, and then is not read back (an actor that predates it refuses unknown fields). */
  seqs?: true;
};

/** Payload of a GET reply with `Shoal-Direct: 1`: what the reader fetches itself with Direct Get. */
export type DirectRead = {
  v: 1;
  stream: string;
  store: string;
  nuid: string;
  size: number;
  chunks: number;
  chunkSize: number;
  /** Chunk sequences as runs (`first+count,…`); absent for objects stock clients wrote (walk the subject). */
  seqs?: string;
  /** Base64url SHA-256 of the whole object; "" for a composed one (its parts are checked each). */
  sha256: string;
  /** CRC-32 of the whole object (8 hex digits) when recorded: what the reader checks instead of the SHA-256. */
  crc32?: string;
  /** A composed multipart object's parts (src/store/format.ts encodeParts): then `nuid` and `seqs` are not the bytes'. */
  parts?: string;
  /** The byte range served, when one was asked for. */
  range?: { start: number; end: number };
};
