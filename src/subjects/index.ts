/**
 * Every NATS subject, stream and KV bucket name Shoal uses, built in one
 * place. Names are a public API (users grant permissions on them and inspect
 * them with the `nats` CLI): they are versioned and documented in
 * docs/subjects.md. Nothing else in the code base writes a `shoal.` subject
 * as an inline string.
 */

export const PREFIX = "shoal";
export const API_VERSION = "v1";

/** Actor kinds. The runtime and the health-monitor use this list. */
export const ACTOR_KINDS = ["storage", "replicator", "rebalancer", "health-monitor"] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

// --- validation of tokens -----------------------------------------------------

/** A NATS subject token: non-empty, no whitespace, no `.`, `*` or `>`. */
const TOKEN = /^[^\s.*>]+$/;

export function assertToken(what: string, token: string): string {
  if (!TOKEN.test(token)) throw new TypeError(`${what} is not a valid NATS subject token: ${JSON.stringify(token)}`);
  return token;
}

// --- S3 bucket name → NATS names ---------------------------------------------

/**
 * Maps an S3 bucket name to the token used in subjects and in the object
 * store's name. S3 names are lowercase letters, digits, `-` and `.`; NATS
 * tokens cannot hold `.`, and S3 never allows `_`, so `.`→`_` is injective.
 * The name must already be valid by S3 rules (see src/store/names.ts).
 */
export function bucketToken(bucket: string): string {
  return assertToken("bucket", bucket.replaceAll(".", "_"));
}

/** Inverse of bucketToken. */
export function bucketFromToken(token: string): string {
  return token.replaceAll("_", ".");
}

/**
 * Name of the JetStream Object Store that holds a bucket (or one shard of
 * it). The stream is `OBJ_<name>`. Shard suffixes use `__`, which a mapped
 * S3 name never contains (S3 forbids adjacent periods and a trailing period),
 * so shard names never collide with another bucket's name.
 */
export function objectStoreName(bucket: string, shard?: number): string {
  const base = bucketToken(bucket);
  return shard === undefined || shard === 0 ? base : `${base}__${shard}`;
}

/** Stream that backs an object store. */
export function objectStoreStream(bucket: string, shard?: number): string {
  return `OBJ_${objectStoreName(bucket, shard)}`;
}

/** Chunk subject of one object version: `$O.<store>.C.<nuid>` (ADR-20). */
export function chunkSubject(store: string, nuid: string): string {
  return `$O.${store}.C.${assertToken("nuid", nuid)}`;
}

/** Metadata subject of one key: `$O.<store>.M.<base64url-padded(key)>` (ADR-20, as @nats-io/obj writes it). */
export function metaSubject(store: string, key: string): string {
  return `$O.${store}.M.${Buffer.from(key, "utf8").toString("base64url")}${"=".repeat((3 - (Buffer.byteLength(key, "utf8") % 3)) % 3)}`;
}

/** Every metadata subject of a store: `$O.<store>.M.>`. */
export function metaSubjectAll(store: string): string {
  return `$O.${store}.M.>`;
}

/** Every chunk subject of a store: `$O.<store>.C.>`. */
export function chunkSubjectAll(store: string): string {
  return `$O.${store}.C.>`;
}

/** Key of a metadata subject (inverse of metaSubject). */
export function keyFromMetaSubject(subject: string): string {
  const token = subject.slice(subject.lastIndexOf(".") + 1);
  return Buffer.from(token, "base64url").toString("utf8");
}

// --- request/reply API ----------------------------------------------------------

export const STORAGE_SERVICE = "shoal-storage";
export const STORAGE_QUEUE = "shoal-storage";

export const OBJECT_OPS = ["put", "get", "head", "delete", "copy", "list", "deletemany"] as const;
export type ObjectOp = (typeof OBJECT_OPS)[number];
export const BUCKET_OPS = ["create", "delete", "list", "info"] as const;
export type BucketOp = (typeof BUCKET_OPS)[number];

/** `shoal.v1.obj.<op>.<bucket>` */
export function objectSubject(op: ObjectOp, bucket: string): string {
  return `${PREFIX}.${API_VERSION}.obj.${op}.${bucketToken(bucket)}`;
}

/** Wildcard the storage service subscribes to for one op: `shoal.v1.obj.<op>.*` */
export function objectSubjectWildcard(op: ObjectOp): string {
  return `${PREFIX}.${API_VERSION}.obj.${op}.*`;
}

/** Multipart upload operations (S3 semantics; docs/api.md). */
export const MPU_OPS = ["create", "part", "complete", "abort", "parts", "list"] as const;
export type MpuOp = (typeof MPU_OPS)[number];

/** `shoal.v1.mpu.<op>.<bucket>` */
export function mpuSubject(op: MpuOp, bucket: string): string {
  return `${PREFIX}.${API_VERSION}.mpu.${op}.${bucketToken(bucket)}`;
}

/** `shoal.v1.mpu.<op>.*` */
export function mpuSubjectWildcard(op: MpuOp): string {
  return `${PREFIX}.${API_VERSION}.mpu.${op}.*`;
}

/** Where a streamed PUT's body goes: `shoal.v1.xfer.<bucket>.<id>` (served by the instance that accepted it). */
export function transferSubject(bucket: string, id: string): string {
  return `${PREFIX}.${API_VERSION}.xfer.${bucketToken(bucket)}.${assertToken("transfer id", id)}`;
}

/** `shoal.v1.bucket.<op>` */
export function bucketSubject(op: BucketOp): string {
  return `${PREFIX}.${API_VERSION}.bucket.${op}`;
}

/** `shoal.v1.health` */
export function healthSubject(): string {
  return `${PREFIX}.${API_VERSION}.health`;
}

// --- presence, control ------------------------------------------------------------

/** `shoal.hb.<kind>.<id>` */
export function heartbeatSubject(kind: string, id: string): string {
  return `${PREFIX}.hb.${assertToken("actor kind", kind)}.${assertToken("actor id", id)}`;
}

/** `shoal.hb.>` — every heartbeat. */
export function heartbeatWildcard(kind?: string): string {
  return kind ? `${PREFIX}.hb.${assertToken("actor kind", kind)}.*` : `${PREFIX}.hb.>`;
}

/** `shoal.ctl.<kind>.<command>` */
export function controlSubject(kind: string, command: string): string {
  return `${PREFIX}.ctl.${assertToken("actor kind", kind)}.${assertToken("command", command)}`;
}

// --- events and alerts --------------------------------------------------------------

export const EVENTS_STREAM = "SHOAL_EVENTS";
export const ALERTS_STREAM = "SHOAL_ALERTS";

/** `shoal.events.<bucket>.<kind>`; with no arguments, every event. */
export function eventSubject(bucket?: string, kind?: string): string {
  return `${PREFIX}.events.${bucket === undefined ? "*" : bucketToken(bucket)}.${kind === undefined ? "*" : assertToken("event kind", kind)}`;
}

export const ALERT_SEVERITIES = ["critical", "warning", "info"] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** `shoal.alerts.<severity>.<code>`; with no arguments, every alert. */
export function alertSubject(severity?: AlertSeverity, code?: string): string {
  return `${PREFIX}.alerts.${severity ?? "*"}.${code === undefined ? "*" : assertToken("alert code", code)}`;
}

// --- KV buckets ----------------------------------------------------------------------

export const KV = {
  /** Bucket registry (one key per S3 bucket, value = bucket config). */
  buckets: "shoal_buckets",
  /** Actor presence (one key per actor instance, value = last heartbeat). */
  actors: "shoal_actors",
  /** Health view written by the health-monitor. */
  health: "shoal_health",
  /** Multipart upload state. */
  multipart: "shoal_multipart",
  /** Replication rules and positions. */
  replication: "shoal_replication",
  /** Rebalance plans and leases. */
  plans: "shoal_plans",
} as const;

/** Key of an actor instance in KV shoal_actors: `<kind>.<id>`. */
export function actorPresenceKey(kind: string, id: string): string {
  return `${assertToken("actor kind", kind)}.${assertToken("actor id", id)}`;
}
