/**
 * The per-bucket list index: an in-memory sorted set of live keys built from
 * the object store's metadata subjects and kept live by an ordered consumer
 * (last message per subject first, then every new one). A LIST first waits
 * until the index has applied the stream's last metadata message, so it sees
 * every acknowledged write (read-after-write).
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import { dropOrdered } from "../jet/consume.ts";
import { ShoalError } from "../errors/index.ts";
import { barrierSubject, keyFromMetaSubject, metaSubjectAll } from "../subjects/index.ts";
import { decodeStoredMeta, isVersionMarker, toObjectInfo, type ObjectInfo } from "./format.ts";
import type { StoreRef } from "./types.ts";
import { storeIncarnation } from "./bucket.ts";
import { barrierFor } from "../runtime/linear.ts";
import { withTimeout } from "../runtime/backoff.ts";

export interface ListEntry {
  key: string;
  size: number;
  etag: string;
  mtime: string;
  revision: number;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  maxKeys?: number;
  /** Start after this key (S3 start-after / marker). */
  startAfter?: string;
  /** Opaque token from a previous page. */
  continuationToken?: string;
}

export interface ListPage {
  contents: ListEntry[];
  commonPrefixes: string[];
  isTruncated: boolean;
  nextContinuationToken: string | undefined;
  keyCount: number;
}

export const MAX_KEYS = 1000;

/** Sorted keys by UTF-8 byte order (S3's order), as an array with binary search. */
export class SortedKeys {
  private keys: string[] = [];
  /**
   * UTF-8 byte order without encoding: it equals code point order, which is
   * UTF-16 unit order except that surrogates (D800–DFFF) sort above E000–FFFF.
   */
  private static cmp(a: string, b: string): number {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      let x = a.charCodeAt(i);
      let y = b.charCodeAt(i);
      if (x === y) continue;
      x = x >= 0xe000 ? x - 0x800 : x >= 0xd800 ? x + 0x2000 : x;
      y = y >= 0xe000 ? y - 0x800 : y >= 0xd800 ? y + 0x2000 : y;
      return x - y;
    }
    return a.length - b.length;
  }
  /** Index of the first key >= k. */
  lowerBound(k: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (SortedKeys.cmp(this.keys[mid]!, k) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  insert(k: string): void {
    const i = this.lowerBound(k);
    if (this.keys[i] !== k) this.keys.splice(i, 0, k);
  }
  remove(k: string): void {
    const i = this.lowerBound(k);
    if (this.keys[i] === k) this.keys.splice(i, 1);
  }
  /** Replaces the content with keys in any order (sorted once). */
  reset(keys: string[]): void {
    this.keys = [...new Set(keys)].sort(SortedKeys.cmp);
  }
  at(i: number): string | undefined {
    return this.keys[i];
  }
  get size(): number {
    return this.keys.length;
  }
  static compare(a: string, b: string): number {
    return SortedKeys.cmp(a, b);
  }
}

/** A continuation token: the last item returned, and whether it was a common prefix. */
export function encodeToken(after: string, commonPrefix: boolean): string {
  return Buffer.from(JSON.stringify({ v: 1, after, cp: commonPrefix })).toString("base64url");
}

/** The token that resumes a listing after everything under `prefix` (a common prefix). */
export function tokenAfterPrefix(prefix: string): string {
  return encodeToken(prefix, true);
}

export function decodeToken(token: string): { after: string; cp: boolean } {
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { v?: number; after?: unknown; cp?: unknown };
    if (v.v === 1 && typeof v.after === "string") return { after: v.after, cp: v.cp === true };
  } catch {
    // fall through
  }
  throw new ShoalError("InvalidArgument", "The continuation token provided is incorrect.");
}

/**
 * S3 LIST semantics over a sorted key set: prefix filter, delimiter rolling
 * keys up into common prefixes (each counted once toward maxKeys), start-after
 * / continuation token, truncation. Pure: `get` gives the entry of a key.
 */
export function listPage(keys: SortedKeys, get: (k: string) => ListEntry, o: ListOptions): ListPage {
  const prefix = o.prefix ?? "";
  const maxKeys = Math.min(Math.max(o.maxKeys ?? MAX_KEYS, 0), MAX_KEYS);
  const token = o.continuationToken !== undefined ? decodeToken(o.continuationToken) : undefined;
  const after = token?.after ?? o.startAfter;
  let i = keys.lowerBound(after !== undefined && SortedKeys.compare(after, prefix) >= 0 ? after : prefix);
  if (after !== undefined && keys.at(i) === after) i++;
  // A page that ended on a common prefix: every key under it was rolled up already.
  if (token?.cp) while (i < keys.size && keys.at(i)!.startsWith(token.after)) i++;
  const contents: ListEntry[] = [];
  const commonPrefixes: string[] = [];
  let last: { v: string; cp: boolean } | undefined;
  let truncated = false;
  while (i < keys.size) {
    const k = keys.at(i)!;
    if (!k.startsWith(prefix)) break;
    if (contents.length + commonPrefixes.length >= maxKeys) {
      truncated = true;
      break;
    }
    const d = o.delimiter ? k.indexOf(o.delimiter, prefix.length) : -1;
    if (o.delimiter && d >= 0) {
      const cp = k.slice(0, d + o.delimiter.length);
      commonPrefixes.push(cp);
      last = { v: cp, cp: true };
      // skip every key under this common prefix: the next key after cp + max char
      i = keys.lowerBound(cp);
      while (i < keys.size && keys.at(i)!.startsWith(cp)) i++;
      continue;
    }
    contents.push(get(k));
    last = { v: k, cp: false };
    i++;
  }
  if (maxKeys === 0) truncated = i < keys.size && keys.at(i)!.startsWith(prefix);
  return {
    contents,
    commonPrefixes,
    isTruncated: truncated,
    nextContinuationToken: truncated && last !== undefined ? encodeToken(last.v, last.cp) : undefined,
    keyCount: contents.length + commonPrefixes.length,
  };
}

/**
 * How long catchUp waits with nothing delivered before it calls the index's
 * consumer stuck. A consumer that is working delivers the read barrier in
 * milliseconds, and one replaying a large bucket keeps delivering. One whose
 * server froze, or whose pull was lost, delivers nothing: nats.js notices
 * only after two missed heartbeats, and then asks the consumer's own server
 * for its info, retried every `expires` (CI: a new R3 bucket's index answered
 * nothing for 20 s, and every BucketInfo timed out).
 */
export const INDEX_STALL_MS = 2500;

/** Pulls of the index's consumer: shorter than nats.js's 30 s, so that missed heartbeats show in 4 s. */
const INDEX_PULL = { expires: 10_000, idle_heartbeat: 2000 };
/** How long stopping an index waits for its consumer loop to end. */
const STOP_WAIT_MS = 5000;

/** Thrown by catchUp when the bucket's stream is no longer the incarnation the index was built from. */
export class StaleIndex extends Error {
  constructor(readonly bucket: string) {
    super(`the list index of ${bucket} belongs to a deleted incarnation of the bucket`);
  }
}

/** What the index's consumer and hasLiveObject read: every metadata subject and the store's read barrier. */
function indexFilter(store: StoreRef): string[] {
  return [metaSubjectAll(store.name), barrierSubject(store.name)];
}

/**
 * A live index of one incarnation of an object store (src/store/bucket.ts,
 * incarnationOf). A bucket deleted and created again is a new stream whose
 * sequences start again at 1: an index of the old one can neither be caught
 * up (its applied sequence may be above the new stream's last) nor resumed
 * (its consumer's position belongs to the old stream), so catchUp refuses
 * with StaleIndex and the owner (IndexSet) builds a new one.
 */
export class KeyIndex {
  private readonly keys = new SortedKeys();
  private readonly entries = new Map<string, ListEntry>();
  private applied = 0;
  private waiters: Array<{ seq: number; resolve: () => void }> = [];
  private messages: ConsumerMessages | undefined;
  private consumer: { delete(): Promise<unknown> } | undefined;
  private running: Promise<void> | undefined;
  private failure: unknown;
  private incarnationSeen = "";
  /** When the consumer last delivered anything (or the index started). */
  private deliveredAt = Date.now();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly store: StoreRef,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  /** Seq of the last metadata message applied. */
  get appliedSeq(): number {
    return this.applied;
  }

  /** Whether its consumer has failed (the index no longer follows the stream). */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The stream incarnation this index was built from. */
  get incarnation(): string {
    return this.incarnationSeen;
  }

  async start(): Promise<void> {
    // the incarnation first: if the stream is replaced before the consumer
    // is made, the index is labelled with the older one and the next catchUp
    // rebuilds it (the safe direction)
    this.incarnationSeen = (await storeIncarnation(this.jsm, this.store)).incarnation;
    const consumer = await this.js.consumers.get(this.store.stream, { filter_subjects: indexFilter(this.store), deliver_policy: DeliverPolicy.LastPerSubject });
    this.consumer = consumer;
    this.deliveredAt = Date.now();
    this.messages = await consumer.consume(INDEX_PULL);
    const msgs = this.messages;
    this.running = (async () => {
      for await (const m of msgs) this.apply(m.subject, m.seq, m.data);
    })().catch((e: unknown) => {
      this.failure = e;
    });
  }

  private apply(subject: string, seq: number, data: Uint8Array): void {
    this.deliveredAt = Date.now();
    if (subject !== this.barrier) this.applyMeta(subject, seq, data);
    if (seq > this.applied) this.applied = seq;
    this.waiters = this.waiters.filter((w) => (w.seq <= this.applied ? (w.resolve(), false) : true));
  }

  private applyMeta(subject: string, seq: number, data: Uint8Array): void {
    try {
      const key = keyFromMetaSubject(subject);
      const meta = decodeStoredMeta(data);
      if (meta.deleted) {
        this.keys.remove(key);
        this.entries.delete(key);
      } else {
        const info: ObjectInfo = toObjectInfo(meta, seq);
        if (!this.entries.has(key)) this.keys.insert(key);
        // the revision users see (a composed object's stock copy keeps its completion's: format.ts)
        this.entries.set(key, { key, size: info.size, etag: info.etag, mtime: info.mtime, revision: info.revision });
      }
    } catch {
      // foreign or corrupt metadata is not listed
    }
  }

  private get barrier(): string {
    return barrierSubject(this.store.name);
  }

  /**
   * Waits until the index has applied every metadata message acknowledged
   * before the call: it publishes the store's read barrier and waits for its
   * own consumer to deliver it (src/runtime/linear.ts). Not "the last
   * metadata sequence as the leader has it": right after a heal a stale
   * leader answers that with an old sequence, and the index counted itself
   * caught up without an acknowledged overwrite (known issue 2 of the model
   * test). StaleIndex when the stream is another incarnation than the one
   * indexed; NoSuchBucket when it is gone. A consumer that delivers nothing
   * for INDEX_STALL_MS while the barrier waits fails the index (`failed`),
   * so that its owner builds a new one on a consumer that works.
   */
  async catchUp(timeoutMs = 5000): Promise<void> {
    if (this.failure) throw this.failure;
    const { incarnation } = await storeIncarnation(this.jsm, this.store);
    if (incarnation !== this.incarnationSeen) throw new StaleIndex(this.store.name);
    const seq = await barrierFor(this.js, this.store.stream, this.barrier);
    if (seq <= this.applied) return;
    // the barrier is in the stream: from now on, a live consumer delivers
    const since = Date.now();
    await new Promise<void>((resolve, reject) => {
      const done = (e?: unknown) => {
        clearTimeout(timer);
        clearInterval(watch);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        if (e) reject(e);
        else resolve();
      };
      const timer = setTimeout(() => done(new ShoalError("Timeout", "the list index did not catch up in time")), timeoutMs);
      const watch = setInterval(() => {
        if (this.failure) return done(this.failure);
        if (Date.now() - Math.max(since, this.deliveredAt) < INDEX_STALL_MS) return;
        this.failure = new ShoalError("ServiceUnavailable", `the list index's consumer delivered nothing for ${INDEX_STALL_MS} ms with the barrier at ${seq} and ${this.applied} applied`);
        void this.messages?.close().catch(() => undefined);
        done(this.failure);
      }, 250);
      const waiter = { seq, resolve: () => done() };
      this.waiters.push(waiter);
    });
  }

  async list(o: ListOptions): Promise<ListPage> {
    await this.catchUp();
    return this.page(o);
  }

  /** A page of what the index holds now (call catchUp first). */
  page(o: ListOptions): ListPage {
    return listPage(this.keys, (k) => this.entries.get(k)!, o);
  }

  /**
   * Stops the consumer and waits, at most STOP_WAIT_MS, for its loop to end:
   * an ordered consumer closed while it recreates itself on a server that
   * does not answer may never end its iterator.
   */
  async stop(): Promise<void> {
    await withTimeout(
      (async () => {
        await this.messages?.close().catch(() => undefined);
        dropOrdered(this.consumer);
        await this.running;
      })(),
      STOP_WAIT_MS,
    );
  }
}

/**
 * The list indexes of one storage instance, one per bucket, each for the
 * bucket's current incarnation: `ready` returns an index caught up with the
 * stream as its leader has it, rebuilding it when the bucket was deleted and
 * created again since it was built.
 */
export class IndexSet {
  private readonly indexes = new Map<string, Promise<KeyIndex>>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly storeOf: (bucket: string) => StoreRef,
  ) {}

  private open(bucket: string): Promise<KeyIndex> {
    let p = this.indexes.get(bucket);
    if (!p) {
      const idx = new KeyIndex(this.js, this.jsm, this.storeOf(bucket));
      p = idx.start().then(() => idx);
      const mine = p;
      p.catch(() => {
        if (this.indexes.get(bucket) === mine) this.indexes.delete(bucket);
        void idx.stop().catch(() => undefined);
      });
      this.indexes.set(bucket, p);
    }
    return p;
  }

  /** A caught-up index of the bucket's current incarnation (NoSuchBucket when there is none). */
  async ready(bucket: string, timeoutMs?: number): Promise<KeyIndex> {
    for (let attempt = 0; ; attempt++) {
      const p = this.open(bucket);
      const idx = await p;
      try {
        await idx.catchUp(timeoutMs);
        return idx;
      } catch (e) {
        // a replaced stream, or a consumer that died with the old one: build
        // anew (a gone bucket too); anything else (a timeout) keeps the index
        const stale = e instanceof StaleIndex || idx.failed || (e instanceof ShoalError && e.code === "NoSuchBucket");
        if (!stale) throw e;
        if (this.indexes.get(bucket) === p) this.indexes.delete(bucket);
        // not awaited: stopping deletes the consumer on its server, and a
        // stuck consumer's server may not answer for the API's 5 s
        void idx.stop().catch(() => undefined);
        if (attempt >= 2 || !(e instanceof StaleIndex || idx.failed)) throw e;
      }
    }
  }

  async drop(bucket: string): Promise<void> {
    const p = this.indexes.get(bucket);
    this.indexes.delete(bucket);
    await (await p?.catch(() => undefined))?.stop();
  }

  async close(): Promise<void> {
    await Promise.all([...this.indexes.keys()].map((b) => this.drop(b)));
  }
}

/**
 * Whether the store holds a live object or a versioned delete marker (with
 * the versions under it), read from the stream itself (the
 * last metadata message of each key, stopping at the first live one): what
 * a DeleteBucket without force checks, so that a stale index can never make
 * it delete a full bucket.
 */
export async function hasLiveObject(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef, timeoutMs = 10_000): Promise<boolean> {
  // The barrier first: the answer covers every write acknowledged before the
  // call, whichever server hosts the consumer (src/runtime/linear.ts; a
  // stale leader once answered "no metadata" for a bucket full of objects).
  const upTo = await barrierFor(js, store.stream, barrierSubject(store.name));
  const bar = barrierSubject(store.name);
  const consumer = await js.consumers.get(store.stream, { filter_subjects: indexFilter(store), deliver_policy: DeliverPolicy.LastPerSubject });
  const msgs = await consumer.consume();
  const timer = setTimeout(() => void msgs.close().catch(() => undefined), timeoutMs);
  try {
    for await (const m of msgs) {
      if (m.subject === bar) {
        if (m.seq >= upTo) return false;
        continue;
      }
      try {
        const meta = decodeStoredMeta(m.data);
        // a delete marker that is a version keeps the versions under it: not empty (as S3)
        if (!meta.deleted || isVersionMarker(meta)) return true;
      } catch {
        return true; // foreign metadata (a stock client's object): not empty
      }
    }
    throw new ShoalError("Timeout", `the metadata of ${store.name} was not read up to its read barrier within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    await msgs.close().catch(() => undefined);
    dropOrdered(consumer);
  }
}
