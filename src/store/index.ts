/**
 * The per-bucket list index: an in-memory sorted set of live keys built from
 * the object store's metadata subjects and kept live by an ordered consumer
 * (last message per subject first, then every new one). A LIST first waits
 * until the index has applied the stream's last metadata message, so it sees
 * every acknowledged write (read-after-write).
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import { ShoalError } from "../errors/index.ts";
import { keyFromMetaSubject, metaSubjectAll } from "../subjects/index.ts";
import { decodeStoredMeta, toObjectInfo, type ObjectInfo } from "./format.ts";
import type { StoreRef } from "./writer.ts";

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

/** A live index of one object store. */
export class KeyIndex {
  private readonly keys = new SortedKeys();
  private readonly entries = new Map<string, ListEntry>();
  private applied = 0;
  private waiters: Array<{ seq: number; resolve: () => void }> = [];
  private messages: ConsumerMessages | undefined;
  private running: Promise<void> | undefined;
  private failure: unknown;

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

  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(this.store.stream, { filter_subjects: metaSubjectAll(this.store.name), deliver_policy: DeliverPolicy.LastPerSubject });
    this.messages = await consumer.consume();
    const msgs = this.messages;
    this.running = (async () => {
      for await (const m of msgs) this.apply(m.subject, m.seq, m.data);
    })().catch((e: unknown) => {
      this.failure = e;
    });
  }

  private apply(subject: string, seq: number, data: Uint8Array): void {
    let key: string;
    try {
      key = keyFromMetaSubject(subject);
      const meta = decodeStoredMeta(data);
      if (meta.deleted) {
        this.keys.remove(key);
        this.entries.delete(key);
      } else {
        const info: ObjectInfo = toObjectInfo(meta, seq);
        if (!this.entries.has(key)) this.keys.insert(key);
        this.entries.set(key, { key, size: info.size, etag: info.etag, mtime: info.mtime, revision: seq });
      }
    } catch {
      // foreign or corrupt metadata is not listed
    }
    if (seq > this.applied) this.applied = seq;
    this.waiters = this.waiters.filter((w) => (w.seq <= this.applied ? (w.resolve(), false) : true));
  }

  /** Waits until the index has applied the store's last metadata message. */
  async catchUp(timeoutMs = 5000): Promise<void> {
    if (this.failure) throw this.failure;
    const last = await this.jsm.direct.getMessage(this.store.stream, { last_by_subj: metaSubjectAll(this.store.name) }).catch((e: unknown) => {
      if (/no message found|not found/i.test(String((e as Error)?.message))) return null;
      throw e;
    });
    const seq = last?.seq ?? 0;
    if (seq <= this.applied) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ShoalError("Timeout", "the list index did not catch up in time")), timeoutMs);
      this.waiters.push({
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async list(o: ListOptions): Promise<ListPage> {
    await this.catchUp();
    return listPage(this.keys, (k) => this.entries.get(k)!, o);
  }

  async stop(): Promise<void> {
    await this.messages?.close().catch(() => undefined);
    await this.running;
  }
}
