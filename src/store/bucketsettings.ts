/**
 * Per-bucket S3 settings kept beside the bucket registry: CORS rules,
 * lifecycle rules and the bucket's owner (the access key that created it).
 * KV `shoal_bucket_settings`, keys `<bucket>.cors`, `<bucket>.lifecycle`,
 * `<bucket>.owner`, `<bucket>.versioning`; values JSON with `v: 1`, decoded and checked when read.
 *
 * Readers on a hot path (the gateway answers CORS on every request with an
 * Origin) use `cached()`: a value is reused for `ttlMs` (default 2 s), so a
 * change reaches every gateway within that time.
 *
 * The storage actor reads versioning on every write and GET/HEAD; it uses
 * `live()` + `current()`: every setting held in memory, fed by a watch of the
 * KV (an ordered push consumer whose callback updates the map as the message
 * is parsed — before a request that arrived after it on the same connection
 * is handled). A change made through this instance is applied to the map
 * before `put`/`delete` return. Whenever the watch cannot vouch for the map
 * (not started, its first snapshot not yet delivered, a connection
 * disconnect, a missed heartbeat, a recreated consumer) `current()` reads
 * from the KV leader as before and the watch is restarted.
 * Propagation window (docs/api.md, "Bucket settings"): another process's
 * change is seen once the KV watch delivers it, normally well under a
 * millisecond after the KV acknowledged it.
 */
import type { KV } from "@nats-io/kv";
import { jetstream, jetstreamManager, DeliverPolicy, type JsMsg, type ConsumerMessages } from "@nats-io/jetstream";
import { dropOrdered } from "../jet/consume.ts";
import type { NatsConnection } from "@nats-io/nats-core";
import { sharedKv } from "../runtime/replicas.ts";
import { ShoalError } from "../errors/index.ts";
import { KV as KV_NAMES, kvKeyPrefix, kvStream } from "../subjects/index.ts";
import { assertBucketName } from "./names.ts";

export interface CorsRule {
  id?: string;
  allowedOrigins: string[];
  allowedMethods: string[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

export interface LifecycleRule {
  id?: string;
  enabled: boolean;
  /** Keys this rule applies to (S3's Filter/Prefix or the legacy top-level Prefix). */
  prefix: string;
  /** Current objects expire this many days after their last modification. */
  expirationDays?: number;
  /** Current objects expire from this date (ISO). */
  expirationDate?: string;
  /** Non-current versions expire this many days after they became non-current (NoncurrentVersionExpiration). */
  noncurrentDays?: number;
  /** Multipart uploads are aborted this many days after they began. */
  abortIncompleteDays?: number;
}

export type SettingKind = "cors" | "lifecycle" | "owner" | "versioning";
export interface SettingValues {
  cors: CorsRule[];
  lifecycle: LifecycleRule[];
  owner: string;
  /** S3 versioning state: "Enabled" or "Suspended" (absent: never versioned). */
  versioning: "Enabled" | "Suspended";
}

const key = (bucket: string, kind: SettingKind) => `${assertBucketName(bucket)}.${kind}`;

function decode<K extends SettingKind>(kind: K, data: Uint8Array): SettingValues[K] {
  let v: { v?: unknown; value?: unknown };
  try {
    v = JSON.parse(new TextDecoder().decode(data)) as typeof v;
  } catch {
    throw new ShoalError("MalformedPayload", `bucket ${kind} setting is not JSON`);
  }
  if (v?.v !== 1) throw new ShoalError("UnsupportedVersion", `bucket ${kind} setting has an unknown version`);
  const ok = kind === "owner" ? typeof v.value === "string" : kind === "versioning" ? v.value === "Enabled" || v.value === "Suspended" : Array.isArray(v.value);
  if (!ok) throw new ShoalError("MalformedPayload", `bucket ${kind} setting is malformed`);
  return v.value as SettingValues[K];
}

const MALFORMED = Symbol("malformed setting");
const KINDS: readonly SettingKind[] = ["cors", "lifecycle", "owner", "versioning"];

/** What the live copy did (tests and metrics): leader reads made, watch (re)starts, messages applied. */
export interface LiveStats {
  leaderReads: number;
  starts: number;
  applied: number;
  /** The KV stream sequence of the newest setting applied from the watch. */
  revision: number;
}

export class BucketSettings {
  private kvp: Promise<KV> | undefined;
  private readonly cache = new Map<string, { at: number; value: unknown }>();
  /** The live copy (`live()`): key → the KV revision it was set at and the decoded value (undefined: no value). */
  private readonly values = new Map<string, { rev: number; value: unknown }>();
  /** True while the watch vouches for `values` (snapshot delivered, no trouble since). */
  private vouched = false;
  private watching = false;
  private stopped = false;
  private consumer: ConsumerMessages | undefined;
  /** The push consumer behind `consumer`: deleted on the server when replaced or stopped (src/jet dropOrdered). */
  private pushConsumer: { delete(): Promise<unknown> } | undefined;
  private restarting: Promise<void> | undefined;
  /** The watch's generation: messages of a replaced watch are ignored. */
  private gen = 0;
  private waiters: Array<() => void> = [];
  readonly liveStats: LiveStats = { leaderReads: 0, starts: 0, applied: 0, revision: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: { ttlMs?: number; now?: () => number } = {},
  ) {}

  private kv(): Promise<KV> {
    this.kvp ??= (async () => sharedKv(jetstream(this.nc), await jetstreamManager(this.nc), KV_NAMES.bucketSettings, { history: 1 }))();
    this.kvp.catch(() => (this.kvp = undefined));
    return this.kvp;
  }

  /**
   * Keeps every setting in memory from a watch of the KV (see the file's
   * comment); resolves once the first snapshot is in, or after `waitMs`
   * (default 5 s) with `current()` reading from the leader until it is.
   */
  async live(o: { waitMs?: number } = {}): Promise<void> {
    if (this.watching) return;
    this.watching = true;
    void this.watchStatus();
    const vouched = new Promise<void>((r) => this.waiters.push(r));
    void this.restart();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([vouched, new Promise<void>((r) => (timer = setTimeout(r, o.waitMs ?? 5000)))]);
    clearTimeout(timer);
  }

  /** Whether `current()` answers from memory right now. */
  get isLive(): boolean {
    return this.vouched;
  }

  /** The value as the live copy knows it; from the KV leader while the watch cannot vouch for it (or without `live()`). */
  async current<K extends SettingKind>(bucket: string, kind: K): Promise<SettingValues[K] | undefined> {
    const v = this.vouched ? this.values.get(key(bucket, kind)) : undefined;
    if (this.vouched && v?.value !== MALFORMED) return v?.value as SettingValues[K] | undefined;
    return this.get(bucket, kind);
  }

  /** Stops the watch (the actor's close). */
  async stopLive(): Promise<void> {
    this.stopped = true;
    this.vouched = false;
    await this.consumer?.close().catch(() => undefined);
    dropOrdered(this.pushConsumer);
  }

  private vouch(): void {
    this.vouched = true;
    for (const w of this.waiters.splice(0)) w();
  }

  /** The watch can no longer vouch for the copy: reads go to the leader until a new snapshot is in. */
  private distrust(): void {
    this.vouched = false;
    if (this.watching && !this.stopped) void this.restart();
  }

  private restart(): Promise<void> {
    this.restarting ??= this.startWatch()
      .catch(() => {
        // meanwhile leader reads; tried again in a second (and on the next connection event)
        if (!this.stopped) setTimeout(() => !this.stopped && !this.vouched && void this.restart(), 1000).unref();
      })
      .finally(() => (this.restarting = undefined));
    return this.restarting;
  }

  private async startWatch(): Promise<void> {
    this.vouched = false;
    this.gen++;
    const old = this.consumer;
    const oldPush = this.pushConsumer;
    this.consumer = undefined;
    this.pushConsumer = undefined;
    await old?.close().catch(() => undefined);
    dropOrdered(oldPush);
    if (this.stopped) return;
    await this.kv(); // the KV exists
    this.liveStats.starts++;
    const gen = ++this.gen;
    const prefix = kvKeyPrefix(KV_NAMES.bucketSettings);
    const js = jetstream(this.nc);
    const oc = await js.consumers.getPushConsumer(kvStream(KV_NAMES.bucketSettings), { filter_subjects: [`${prefix}>`], deliver_policy: DeliverPolicy.LastPerSubject });
    const pending = (await oc.info(true)).num_pending;
    const fresh = new Map<string, { rev: number; value: unknown }>();
    let seen = 0;
    let snapshot = pending === 0;
    // an empty KV: changes made after the consumer was created arrive through it
    if (snapshot) this.values.clear();
    const apply = (m: JsMsg, into: Map<string, { rev: number; value: unknown }>) => {
      const k = m.subject.slice(prefix.length);
      const kind = k.slice(k.lastIndexOf(".") + 1) as SettingKind;
      if (!KINDS.includes(kind)) return;
      const op = m.headers?.get("KV-Operation");
      let value: unknown;
      if (!op) {
        try {
          value = decode(kind, m.data);
        } catch {
          value = MALFORMED; // current() reads it from the leader, whose decode throws the typed error
        }
      }
      // a change this instance made itself may be ahead of the watch
      if ((into.get(k)?.rev ?? 0) < m.seq) into.set(k, { rev: m.seq, value });
      this.liveStats.applied++;
      this.liveStats.revision = Math.max(this.liveStats.revision, m.seq);
    };
    const msgs = await oc.consume({
      callback: (m) => {
        if (gen !== this.gen) return;
        if (snapshot) return apply(m, this.values);
        apply(m, fresh);
        if (++seen >= pending) {
          snapshot = true;
          // the snapshot replaces the copy, except changes made here after it was taken
          for (const [k, v] of this.values) if (v.rev > (fresh.get(k)?.rev ?? 0)) fresh.set(k, v);
          this.values.clear();
          for (const [k, v] of fresh) this.values.set(k, v);
          this.vouch();
        }
      },
    });
    if (this.stopped || gen !== this.gen) {
      // stopped or replaced while it was being created
      await msgs.close().catch(() => undefined);
      dropOrdered(oc);
      return;
    }
    this.consumer = msgs;
    this.pushConsumer = oc;
    if (pending === 0) this.vouch();
    void (async () => {
      for await (const st of msgs.status()) {
        if (this.consumer !== msgs) return;
        if (st.type === "heartbeats_missed" || st.type === "reset" || st.type === "ordered_consumer_recreated" || st.type === "consumer_deleted" || st.type === "consumer_not_found" || st.type === "stream_not_found") return this.distrust();
      }
    })().catch(() => undefined);
    void msgs.closed().then(() => {
      if (this.consumer === msgs) this.distrust();
    });
  }

  /** Connection trouble: a message may have been missed while disconnected. */
  private async watchStatus(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (this.stopped) return;
      if (st.type === "disconnect" || st.type === "reconnect") this.distrust();
    }
  }

  async get<K extends SettingKind>(bucket: string, kind: K): Promise<SettingValues[K] | undefined> {
    this.liveStats.leaderReads++;
    const e = await (await this.kv()).get(key(bucket, kind));
    const value = !e || e.operation !== "PUT" ? undefined : decode(kind, e.value);
    this.cache.set(key(bucket, kind), { at: this.now(), value });
    return value;
  }

  /** Like get, reusing a value read less than ttlMs ago. */
  async cached<K extends SettingKind>(bucket: string, kind: K): Promise<SettingValues[K] | undefined> {
    const c = this.cache.get(key(bucket, kind));
    if (c && this.now() - c.at < (this.o.ttlMs ?? 2000)) return c.value as SettingValues[K] | undefined;
    if (this.cache.size > 10_000) this.cache.clear();
    return this.get(bucket, kind);
  }

  async put<K extends SettingKind>(bucket: string, kind: K, value: SettingValues[K]): Promise<void> {
    const rev = await (await this.kv()).put(key(bucket, kind), JSON.stringify({ v: 1, value }));
    this.cache.set(key(bucket, kind), { at: this.now(), value });
    this.values.set(key(bucket, kind), { rev, value });
  }

  /** Sets the value only if none is there; returns whether it was set. */
  async create<K extends SettingKind>(bucket: string, kind: K, value: SettingValues[K]): Promise<boolean> {
    try {
      await (await this.kv()).create(key(bucket, kind), JSON.stringify({ v: 1, value }));
      return true;
    } catch {
      return false;
    }
  }

  async delete(bucket: string, kind: SettingKind): Promise<void> {
    await (await this.kv()).delete(key(bucket, kind));
    this.cache.set(key(bucket, kind), { at: this.now(), value: undefined });
    this.values.set(key(bucket, kind), { rev: 0, value: undefined });
  }

  /** Removes every setting of a bucket (when the bucket is deleted). */
  async forget(bucket: string): Promise<void> {
    for (const k of KINDS) await this.delete(bucket, k).catch(() => undefined);
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }
}
