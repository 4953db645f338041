/**
 * Every NATS subject, stream and KV bucket name Shoal uses, built in one
 * place. Names are a public API (users grant permissions on them and inspect
 * them with the `nats` CLI): they are versioned and documented in
 * docs/subjects.md. Nothing else in the code base writes a `shoal.` subject
 * as an inline string.
 */

import { ShoalError } from "../errors/index.ts";
import { assertBucketName, bucketNameProblem } from "./v1.ts";

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
 * tokens cannot hold `.`, and S3 never allows `_`, so `.`→`_` is injective
 * over valid names. Anything else is refused here (InvalidBucketName): a
 * name holding `_` would otherwise reach the bucket whose `.` became that
 * `_` (`a_b` → `a.b`).
 */
export function bucketToken(bucket: string): string {
  return assertBucketName(bucket).replaceAll(".", "_");
}

/** Inverse of bucketToken: the bucket a token names (InvalidBucketName when it names none). */
export function bucketFromToken(token: string): string {
  const name = token.replaceAll("_", ".");
  if (bucketNameProblem(name) !== undefined || name.replaceAll(".", "_") !== token) {
    throw new ShoalError("InvalidBucketName", `${JSON.stringify(token.slice(0, 80))} is not the token of a valid bucket name`, { detail: { bucket: token.slice(0, 80) } });
  }
  return name;
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

/**
 * A store's read barrier (src/runtime/linear.ts): an empty message on a chunk
 * subject no object version uses (nuids are 22 alphanumerics), rolled up so
 * one is kept; the sweep treats it as any unreferenced chunk.
 */
export function barrierSubject(store: string): string {
  return `$O.${store}.C.${BARRIER_TOKEN}`;
}

/** The token of read-barrier subjects and KV keys (never a nuid, an upload id or a bucket token). */
export const BARRIER_TOKEN = "_barrier";

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

export const OBJECT_OPS = ["put", "get", "head", "delete", "copy", "list", "deletemany", "versions"] as const;
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

/** Every streamed PUT body subject: `shoal.v1.xfer.>` (for contracts and permissions). */
export function transferSubjectAll(): string {
  return `${PREFIX}.${API_VERSION}.xfer.>`;
}

/**
 * The prefix of the object-metadata names Shoal keeps for itself (stored S3
 * headers, the part sizes of a multipart object): user metadata may not use it.
 */
export const RESERVED_META_PREFIX = `${PREFIX}.`;

/** Metadata name of a multipart object's part sizes (`shoal.parts`). */
export const PARTS_META = `${RESERVED_META_PREFIX}parts`;

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

// --- rebalancer ---------------------------------------------------------------------

export const REBALANCER_SERVICE = "shoal-rebalancer";

/** Requests the rebalancer serves on `shoal.ctl.rebalancer.<command>` (docs/rebalancer.md). */
export const REBALANCER_COMMANDS = ["status", "plan", "run", "servers", "drain", "undrain", "remove", "repair"] as const;
export type RebalancerCommand = (typeof REBALANCER_COMMANDS)[number];

/** `shoal.ctl.rebalancer.<command>` */
export function rebalancerSubject(command: RebalancerCommand): string {
  return controlSubject("rebalancer", command);
}

/** What a rebalance event reports: a move started, finished or failed; a drained server safe to stop. */
export const REBALANCE_EVENTS = ["started", "finished", "failed", "safe"] as const;
export type RebalanceEvent = (typeof REBALANCE_EVENTS)[number];

/** `shoal.rebalance.<event>`; with no argument, every rebalance event (`shoal.rebalance.*`). Core NATS, not stored. */
export function rebalanceEventSubject(event?: RebalanceEvent): string {
  return `${PREFIX}.rebalance.${event === undefined ? "*" : assertToken("rebalance event", event)}`;
}

/** Keys of KV shoal_plans. */
export const PLAN_KEYS = {
  /** Who runs plans: `{ owner, until }`, taken and renewed with compare-and-set. */
  lease: "lease",
  /** Servers seen and what the operator said about them (drained, removed). */
  servers: "servers",
  /** Progress of the current rebalance (what `shoal rebalance status` shows). */
  status: "status",
  /** Operator overrides of the rebalance policy (docs/rebalancer.md). */
  policy: "policy",
  /** A `shoal rebalance run` request (a timestamp). */
  run: "run",
} as const;

// --- events and alerts --------------------------------------------------------------

export const EVENTS_STREAM = "SHOAL_EVENTS";
export const ALERTS_STREAM = "SHOAL_ALERTS";

/** `shoal.events.<bucket>.<kind>`; with no arguments, every event. */
export function eventSubject(bucket?: string, kind?: string): string {
  return `${PREFIX}.events.${bucket === undefined ? "*" : bucketToken(bucket)}.${kind === undefined ? "*" : assertToken("event kind", kind)}`;
}

/** Every subject of stream SHOAL_EVENTS: `shoal.events.>`. */
export function eventsStreamSubject(): string {
  return `${PREFIX}.events.>`;
}

export const ALERT_SEVERITIES = ["critical", "warning", "info"] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

/** `shoal.alerts.<severity>.<code>`; with no arguments, every alert. */
export function alertSubject(severity?: AlertSeverity, code?: string): string {
  return `${PREFIX}.alerts.${severity ?? "*"}.${code === undefined ? "*" : assertToken("alert code", code)}`;
}

/** Every subject of stream SHOAL_ALERTS: `shoal.alerts.>`. */
export function alertsStreamSubject(): string {
  return `${PREFIX}.alerts.>`;
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
  /** Per-bucket S3 settings: `<bucket>.cors`, `<bucket>.lifecycle`, `<bucket>.owner`. */
  bucketSettings: "shoal_bucket_settings",
} as const;

/** The stream behind a KV bucket (`KV_<name>`), as @nats-io/kv names it. */
export function kvStream(name: string): string {
  return `KV_${name}`;
}

/** The subject prefix of a KV bucket's keys (`$KV.<name>.`). */
export function kvKeyPrefix(name: string): string {
  return `$KV.${name}.`;
}

/** Every key subject of a KV bucket: `$KV.<name>.>`. */
export function kvSubjectAll(name: string): string {
  return `${kvKeyPrefix(name)}>`;
}

/** Key of an actor instance in KV shoal_actors: `<kind>.<id>`. */
export function actorPresenceKey(kind: string, id: string): string {
  return `${assertToken("actor kind", kind)}.${assertToken("actor id", id)}`;
}
