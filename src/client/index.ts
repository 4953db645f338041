/**
 * The TypeScript SDK. Every other edge (CLI, S3 gateway, console) uses it.
 *
 *   const shoal = await ShoalClient.connect({ servers: "nats://127.0.0.1:4222" });
 *   await shoal.createBucket("photos");
 *   await shoal.put("photos", "cat.jpg", fs.createReadStream("cat.jpg"), { contentType: "image/jpeg" });
 *   const { info, body } = await shoal.get("photos", "cat.jpg", { range: "bytes=0-1023" });
 *   for await (const entry of shoal.list("photos", { prefix: "2026/", delimiter: "/" })) …
 *
 * Errors are ShoalError with the code the service sent. Idempotent calls are
 * retried with short per-attempt timeouts and backoff, so a stream-leader
 * failover costs seconds, not stacked 5 s timeouts.
 *
 * `ShoalClient` is a thin facade. Behind it, top-down:
 *   ./wire.ts         requests, retries, JSON calls, large bodies (direct or streamed)
 *   ./buckets.ts      shoal.v1.bucket.*
 *   ./objects.ts      shoal.v1.obj.*
 *   ./multipart.ts    shoal.v1.mpu.*
 *   ./events.ts       SHOAL_EVENTS consumers
 *   ./replication.ts  replication rules (KV) and scrubs
 *   ./cluster.ts      health and rebalancer views;  ./rebalance.ts  the rebalancer's commands
 *   ./direct.ts       bodies straight to and from the bucket's stream
 *   ./types.ts        the public types
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { ShoalError } from "../errors/index.ts";
import { connectNats } from "../connect.ts";
import { buildConfig, type NatsConfig } from "../config.ts";
import type { ReplicationRule, ReplicationTarget, ScrubReport } from "../store/replication.ts";
import type { VersionPage, VersionListOptions } from "../store/versions.ts";
import { Wire } from "./wire.ts";
import { installPayloadPaths } from "./payloads.ts";
import { installRequestPaths } from "./requests.ts";
import * as buckets from "./buckets.ts";
import * as objects from "./objects.ts";
import * as multipart from "./multipart.ts";
import * as replication from "./replication.ts";
import { events } from "./events.ts";
import { RebalanceApi } from "./rebalance.ts";
import { clusterHealth, rebalancerStatus, type ClusterHealth } from "./cluster.ts";
import type {
  Body,
  BucketInfo,
  ClientOptions,
  Conditions,
  CopyOptions,
  DeleteManyResult,
  DeleteResult,
  DeliveredEvent,
  EventsOptions,
  GetOptions,
  GetResult,
  ListEntry,
  ListOptions,
  ListPage,
  ObjectMeta,
  PartInfo,
  PartList,
  PutOptions,
  UploadList,
  UploadListOptions,
} from "./types.ts";

// large chunks travel through nats.js without its extra copies (payloads.ts), and answered
// requests without a stack trace each (requests.ts)
installPayloadPaths();
installRequestPaths();

export class ShoalClient {
  readonly nc: NatsConnection;
  private readonly wire: Wire;
  private readonly owned: boolean;

  constructor(nc: NatsConnection, opts: ClientOptions & { owned?: boolean } = {}) {
    this.nc = nc;
    this.wire = new Wire(nc, opts);
    this.owned = opts.owned ?? false;
  }

  /** Connects with a NATS config slice, or just server URLs. */
  static async connect(cfg: Omit<Partial<NatsConfig>, "servers"> & { servers: string | readonly string[] }, opts: ClientOptions = {}): Promise<ShoalClient> {
    const nats = buildConfig({ nats: { ...cfg, servers: typeof cfg.servers === "string" ? cfg.servers : [...cfg.servers] } }).nats;
    const nc = await connectNats(nats, { name: "shoal-sdk" });
    return new ShoalClient(nc, { ...opts, owned: true });
  }

  /** The rebalancer: servers, drain, plans and progress (./rebalance.ts). */
  get rebalance(): RebalanceApi {
    return (this._rebalance ??= new RebalanceApi(this.nc));
  }
  private _rebalance: RebalanceApi | undefined;

  async close(): Promise<void> {
    if (this.owned && !this.nc.isClosed()) await this.nc.close();
  }

  // --- buckets (./buckets.ts) -------------------------------------------------------

  createBucket(name: string, opts: { replicas?: 1 | 3 | 5 } = {}): Promise<BucketInfo> {
    return buckets.createBucket(this.wire, name, opts);
  }

  deleteBucket(name: string, opts: { force?: boolean } = {}): Promise<{ deleted: boolean }> {
    return buckets.deleteBucket(this.wire, name, opts);
  }

  listBuckets(): Promise<BucketInfo[]> {
    return buckets.listBuckets(this.wire);
  }

  bucketInfo(name: string): Promise<BucketInfo> {
    return buckets.bucketInfo(this.wire, name);
  }

  // --- objects (./objects.ts) -------------------------------------------------------

  put(bucket: string, key: string, body: Body, opts: PutOptions = {}): Promise<ObjectMeta> {
    return objects.put(this.wire, bucket, key, body, opts);
  }

  get(bucket: string, key: string, opts: GetOptions = {}): Promise<GetResult> {
    return objects.get(this.wire, bucket, key, opts);
  }

  /** Whole body as bytes (small objects). */
  async getBytes(bucket: string, key: string, opts: Conditions & { range?: string; versionId?: string } = {}): Promise<Uint8Array> {
    return (await this.get(bucket, key, opts)).bytes();
  }

  head(bucket: string, key: string, opts: Conditions & { versionId?: string } = {}): Promise<ObjectMeta> {
    return objects.head(this.wire, bucket, key, opts);
  }

  /**
   * Deletes the key (in a versioned bucket: adds a delete marker, returned
   * as `versionId` with `deleteMarker: true`), or with `versionId` removes
   * that version for good (the previous one becomes current).
   */
  delete(bucket: string, key: string, opts: { versionId?: string } = {}): Promise<DeleteResult> {
    return objects.remove(this.wire, bucket, key, opts);
  }

  /** A page of every version and delete marker (S3 ListObjectVersions): keys in order, each key's versions newest first. */
  listVersions(bucket: string, opts: VersionListOptions = {}): Promise<VersionPage> {
    return objects.listVersions(this.wire, bucket, opts);
  }

  deleteMany(bucket: string, keys: string[]): Promise<DeleteManyResult> {
    return objects.deleteMany(this.wire, bucket, keys);
  }

  copy(src: { bucket: string; key: string; versionId?: string }, dest: { bucket: string; key: string }, opts: CopyOptions = {}): Promise<ObjectMeta> {
    return objects.copy(this.wire, src, dest, opts);
  }

  listPage(bucket: string, opts: ListOptions = {}): Promise<ListPage> {
    return objects.listPage(this.wire, bucket, opts);
  }

  /** Every entry (objects, and common prefixes as `{ prefix }`), page by page. */
  list(bucket: string, opts: Omit<ListOptions, "continuationToken"> = {}): AsyncGenerator<ListEntry | { prefix: string }> {
    return objects.list(this.wire, bucket, opts);
  }

  // --- multipart uploads, S3 semantics (./multipart.ts) --------------------------------

  createMultipart(bucket: string, key: string, opts: { contentType?: string; metadata?: Record<string, string> } = {}): Promise<{ uploadId: string }> {
    return multipart.createMultipart(this.wire, bucket, key, opts);
  }

  /** Uploads part `partNumber` (1–10000; every part but the last ≥ 5 MiB). Re-uploading a number replaces the part. */
  uploadPart(bucket: string, key: string, uploadId: string, partNumber: number, body: Body, opts: Pick<PutOptions, "contentMd5" | "sha256" | "windowBytes" | "signal"> = {}): Promise<PartInfo> {
    return multipart.uploadPart(this.wire, bucket, key, uploadId, partNumber, body, opts);
  }

  /** Assembles the listed parts into the object; its ETag is S3's `<md5 of md5s>-<N>`. */
  completeMultipart(bucket: string, key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<ObjectMeta> {
    return multipart.completeMultipart(this.wire, bucket, key, uploadId, parts);
  }

  abortMultipart(bucket: string, key: string, uploadId: string): Promise<{ aborted: boolean }> {
    return multipart.abortMultipart(this.wire, bucket, key, uploadId);
  }

  listParts(bucket: string, key: string, uploadId: string, opts: { partNumberMarker?: number; maxParts?: number } = {}): Promise<PartList> {
    return multipart.listParts(this.wire, bucket, key, uploadId, opts);
  }

  listMultipartUploads(bucket: string, opts: UploadListOptions = {}): Promise<UploadList> {
    return multipart.listMultipartUploads(this.wire, bucket, opts);
  }

  // --- events (./events.ts) -----------------------------------------------------------

  /**
   * Object-change events as an async iterator (stream SHOAL_EVENTS): an
   * ordered ephemeral consumer, or a durable one when `durable` is given.
   */
  events(opts: EventsOptions = {}): AsyncGenerator<DeliveredEvent> {
    return events(this.nc, opts);
  }

  // --- replication rules (./replication.ts; KV shoal_replication, applied by the replicator) ---

  /** Adds a rule: every change to `source` is applied to `target` (this cluster, or `target.servers`). */
  addReplication(source: string, target: ReplicationTarget): Promise<ReplicationRule> {
    return replication.addReplication(this.wire, source, target);
  }

  listReplications(): Promise<ReplicationRule[]> {
    return replication.listReplications(this.wire);
  }

  /** Removes a rule, its progress and its consumer. */
  removeReplication(id: string): Promise<{ removed: boolean }> {
    return replication.removeReplication(this.wire, id);
  }

  /** Each rule with its lag: changes not yet applied, and how old the oldest of them is. */
  replicationStatus(): Promise<replication.ReplicationRow[]> {
    return replication.replicationStatus(this.wire);
  }

  /** Runs anti-entropy for a rule now (on a replicator) and returns its report. */
  scrubReplication(id: string): Promise<ScrubReport & { id: string }> {
    return replication.scrubReplication(this.wire, id);
  }

  // --- cluster views (./cluster.ts) ---------------------------------------------------

  /** The health-monitor's view (what `shoal status` shows); ServiceUnavailable when none answers. */
  health(): Promise<ClusterHealth> {
    return clusterHealth(this.nc);
  }

  /** The rebalancer's progress, or null when no rebalancer answers. */
  rebalancerStatus(): Promise<Record<string, unknown> | null> {
    return rebalancerStatus(this.nc);
  }
}

export { ShoalError };
export * from "./types.ts";
export type { ReplicationRow } from "./replication.ts";
/** ListObjectVersions entries and pages: the store's own types (src/store/versions.ts). */
export type { VersionEntry, VersionPage, VersionListOptions } from "../store/versions.ts";
export type { ClusterHealth } from "./cluster.ts";
export { RebalanceApi, type RebalanceStatus, type RebalancePlan, type ServerRow, type PlannedMove } from "./rebalance.ts";
export type { ReplicationRule, ReplicationTarget, ReplicationStatus, ScrubReport } from "../store/replication.ts";

/**
 * An opaque continuation token that resumes a listing after everything under
 * `prefix` (a common prefix already returned) — what an S3 v1 `marker` that
 * is a common prefix means. The token's format is the store's.
 */
export { tokenAfterPrefix } from "../store/index.ts";
