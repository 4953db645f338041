/**
 * The plain in-memory model behind test/cluster/model.test.ts: what a user of
 * one bucket may see, given the replies they got. Pure (no I/O), so its
 * checks are unit-tested on their own (test/unit/model-checker.test.ts).
 *
 * Every body written by the test is a *content*: bytes derived from a number
 * (`cid`), so any bytes read back are either exactly one content's bytes or a
 * violation ("mixed" — bytes of no version ever written, e.g. one version's
 * head with another's tail).
 *
 * Per key the model keeps
 *   - `now`: the states the key may be in, given only the operations whose
 *     outcome is known (acknowledged, or refused with a definite error). An
 *     acknowledged write makes it exactly one state;
 *   - `pending`: the writes whose outcome is unknown (a timeout, an
 *     unavailable service, an actor killed under them). Each may have
 *     landed already or may land later, at most once; a read that shows one
 *     proves it landed (it leaves `pending`, the key's state becomes it).
 * A read must return a state in `now` ∪ `pending`: anything else is an
 * acknowledged write lost, or bytes that were never written.
 */
import { createHash } from "node:crypto";

export const ABSENT = "absent" as const;

/** One version of a key as the model knows it. */
export interface Version {
  cid: number;
  size: number;
  /** ETag of the version when known (from the ack, or predicted for puts and multipart). */
  etag?: string;
  /** Revision (metadata stream sequence) when acknowledged. */
  revision?: number;
}

export type State = Version | typeof ABSENT;

export interface KeyModel {
  now: State[];
  pending: State[];
}

// --- contents -------------------------------------------------------------------

/** The bytes of content `cid` (size bytes): the id in the first bytes, then xorshift noise seeded by the id. */
export function contentBytes(cid: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (cid * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  const tag = Buffer.from(`<${cid}>`);
  tag.copy(b, 0, 0, Math.min(tag.length, size));
  return b;
}

export const sha256b64url = (b: Uint8Array) => createHash("sha256").update(b).digest("base64url");
export const md5hex = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
/** S3's multipart ETag: md5 of the parts' binary md5s, then `-N`. */
export function multipartEtag(parts: Uint8Array[]): string {
  const h = createHash("md5");
  for (const p of parts) h.update(createHash("md5").update(p).digest());
  return `${h.digest("hex")}-${parts.length}`;
}
/** Digest strings compared without base64 padding and the ADR-20 `SHA-256=` prefix. */
export const normDigest = (s: string | undefined) => (s ?? "").replace(/^SHA-256=/i, "").replace(/=+$/, "");

/**
 * Every content written in a run: sha256 → (cid, size), so bytes read back
 * name their version. Different contents can have the same bytes (every
 * empty body): a digest names all of them, and the caller picks the one the
 * key may hold.
 */
export class Contents {
  private bySha = new Map<string, Array<{ cid: number; size: number }>>();
  private next = 1;
  constructor(base = 0) {
    this.next = base + 1;
  }
  make(size: number): { cid: number; bytes: Buffer } {
    const cid = this.next++;
    const bytes = contentBytes(cid, size);
    this.register(cid, bytes);
    return { cid, bytes };
  }
  /** Registers bytes as content `cid`. */
  register(cid: number, bytes: Uint8Array): void {
    const sha = sha256b64url(bytes);
    const list = this.bySha.get(sha) ?? [];
    list.push({ cid, size: bytes.byteLength });
    this.bySha.set(sha, list);
  }
  reserve(): number {
    return this.next++;
  }
  /** The content these bytes are: one `accept`s (the key's possible versions), else any; undefined for bytes never written. */
  identify(bytes: Uint8Array, accept: (cid: number) => boolean = () => true): { cid: number; size: number } | undefined {
    return this.identifyDigest(sha256b64url(bytes), accept);
  }
  /** Like identify, by SHA-256 (base64url, padded or not). */
  identifyDigest(sha: string, accept: (cid: number) => boolean = () => true): { cid: number; size: number } | undefined {
    const list = this.bySha.get(normDigest(sha)) ?? [];
    return list.find((c) => accept(c.cid)) ?? list[0];
  }
  bytesOf(v: Version, multipart: Map<number, Buffer>): Buffer {
    return multipart.get(v.cid) ?? contentBytes(v.cid, v.size);
  }
}

// --- operations log (for the events check) ---------------------------------------

export type Outcome = "acked" | "ambiguous";
export interface WriteRecord {
  /** Order in which the test issued it (commands run one at a time). */
  n: number;
  key: string;
  kind: "create" | "delete";
  outcome: Outcome;
  /** creates: content and, when acked, the revision and digests the ack reported. */
  cid?: number;
  size?: number;
  sha256?: string;
  etag?: string;
  revision?: number;
  /** deletes: the ack's `deleted`. */
  deleted?: boolean;
}

export interface EventLike {
  eventName: string;
  key: string;
  size: number;
  etag?: string;
  sha256?: string;
  revision: number;
  source: { stream: string; seq: number };
}

// --- the model --------------------------------------------------------------------

export const sameState = (a: State, b: State) => (a === ABSENT || b === ABSENT ? a === b : a.cid === b.cid);
const describe = (s: State) => (s === ABSENT ? "absent" : `cid ${s.cid} (${s.size} B${s.etag ? `, etag ${s.etag}` : ""})`);

export class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "Violation";
  }
}

export class Model {
  readonly keys = new Map<string, KeyModel>();
  readonly writes: WriteRecord[] = [];
  /** Multipart contents, whose bytes are not a plain contentBytes(cid). */
  readonly multipart = new Map<number, Buffer>();
  /** Acknowledged writes that a later read contradicted. Must stay 0. */
  lost = 0;
  private n = 0;

  constructor(readonly keyNames: readonly string[]) {
    for (const k of keyNames) this.keys.set(k, { now: [ABSENT], pending: [] });
  }

  key(k: string): KeyModel {
    const m = this.keys.get(k);
    if (!m) throw new Error(`key ${k} is not in the model`);
    return m;
  }

  /** Every state a read of `k` may show now. */
  possible(k: string): State[] {
    const m = this.key(k);
    return [...m.now, ...m.pending];
  }

  definitelyPresent(k: string): boolean {
    return this.possible(k).every((s) => s !== ABSENT);
  }

  definitelyAbsent(k: string): boolean {
    return this.possible(k).every((s) => s === ABSENT);
  }

  // --- writes ---

  ackCreate(k: string, v: Version, sha256: string): void {
    const m = this.key(k);
    m.now = [v];
    this.writes.push({ n: this.n++, key: k, kind: "create", outcome: "acked", cid: v.cid, size: v.size, sha256, ...(v.etag ? { etag: v.etag } : {}), ...(v.revision !== undefined ? { revision: v.revision } : {}) });
  }

  ambiguousCreate(k: string, v: Version, sha256: string): void {
    this.key(k).pending.push(v);
    this.writes.push({ n: this.n++, key: k, kind: "create", outcome: "ambiguous", cid: v.cid, size: v.size, sha256, ...(v.etag !== undefined ? { etag: v.etag } : {}) });
  }

  /** An acknowledged delete: `deleted` says whether it removed something. */
  ackDelete(k: string, deleted: boolean): void {
    const m = this.key(k);
    if (deleted && this.definitelyAbsent(k)) {
      this.lost++;
      throw new Violation(`delete of ${k} reported deleted:true, but no write of it can have landed`);
    }
    if (!deleted && this.definitelyPresent(k)) {
      this.lost++;
      throw new Violation(`delete of ${k} reported deleted:false, but it held an acknowledged version (${m.now.map(describe).join(" | ")})`);
    }
    m.now = [ABSENT];
    this.writes.push({ n: this.n++, key: k, kind: "delete", outcome: "acked", deleted });
  }

  ambiguousDelete(k: string): void {
    this.key(k).pending.push(ABSENT);
    this.writes.push({ n: this.n++, key: k, kind: "delete", outcome: "ambiguous" });
  }

  // --- reads ---

  /**
   * A read of `k` showed `seen` (ABSENT for NoSuchKey). It must be one of the
   * possible states; the key's state is then known to be it.
   */
  observe(k: string, seen: State, what: string): State {
    const m = this.key(k);
    const inNow = m.now.find((s) => sameState(s, seen));
    const pi = m.pending.findIndex((s) => sameState(s, seen));
    if (!inNow && pi < 0) {
      this.lost++;
      throw new Violation(`${what} of ${k} returned ${describe(seen)}; possible: ${this.possible(k).map(describe).join(" | ")}`);
    }
    const known = inNow ?? m.pending[pi]!;
    if (!inNow) m.pending.splice(pi, 1);
    // A version keeps what the ack told us (etag, revision).
    m.now = [known];
    return known;
  }

  /** Content `cid` as a version, if any possible state of `k` is it. */
  versionOf(k: string, cid: number): Version | undefined {
    return this.possible(k).find((s): s is Version => s !== ABSENT && s.cid === cid);
  }

  // --- lists ---

  /**
   * Checks one complete listing (all pages): `keys` in the order the pages
   * returned them (objects), `prefixes` the common prefixes, `order` the
   * merged order of both as returned.
   */
  checkList(opts: { prefix: string; delimiter?: string }, entries: Array<{ key: string; etag: string; size: number }>, prefixes: string[], order: string[]): void {
    for (let i = 1; i < order.length; i++) {
      if (Buffer.compare(Buffer.from(order[i - 1]!), Buffer.from(order[i]!)) >= 0) throw new Violation(`list is not strictly ordered: ${JSON.stringify(order[i - 1])} then ${JSON.stringify(order[i])}`);
    }
    const { prefix, delimiter } = opts;
    const rolled = (k: string): string | undefined => {
      if (!delimiter) return undefined;
      const i = k.indexOf(delimiter, prefix.length);
      return i < 0 ? undefined : k.slice(0, i + delimiter.length);
    };
    const listed = new Map(entries.map((e) => [e.key, e]));
    for (const e of entries) {
      if (!e.key.startsWith(prefix)) throw new Violation(`list with prefix ${JSON.stringify(prefix)} returned ${e.key}`);
      if (rolled(e.key) !== undefined) throw new Violation(`list with delimiter returned ${e.key} instead of its common prefix`);
      if (!this.keys.has(e.key)) throw new Violation(`list returned ${e.key}, a key never written`);
      const ok = this.possible(e.key).some((s) => s !== ABSENT && s.size === e.size && (s.etag === undefined || s.etag === e.etag));
      if (!ok) {
        this.lost++;
        throw new Violation(`list returned ${e.key} (${e.size} B, etag ${e.etag}); possible: ${this.possible(e.key).map(describe).join(" | ")}`);
      }
    }
    const expectPrefixes = new Set<string>();
    const mayPrefixes = new Set<string>();
    for (const k of this.keyNames) {
      if (!k.startsWith(prefix)) continue;
      const r = rolled(k);
      if (r !== undefined) {
        if (!this.definitelyAbsent(k)) mayPrefixes.add(r);
        if (this.definitelyPresent(k)) expectPrefixes.add(r);
        continue;
      }
      if (this.definitelyPresent(k) && !listed.has(k)) {
        this.lost++;
        throw new Violation(`list is missing ${k}, which holds ${this.possible(k).map(describe).join(" | ")}`);
      }
      if (this.definitelyAbsent(k) && listed.has(k)) throw new Violation(`list returned ${k}, which is deleted (or was never written)`);
    }
    for (const p of expectPrefixes) if (!prefixes.includes(p)) throw new Violation(`list is missing common prefix ${p}`);
    for (const p of prefixes) if (!mayPrefixes.has(p)) throw new Violation(`list returned common prefix ${p}, under which no key can exist`);
  }
}

// --- events -----------------------------------------------------------------------

/**
 * The event check, run at the end of a run once the replicator has caught up.
 * `events` are every event of the run's bucket in SHOAL_EVENTS; `finalState`
 * the state of each key read at the end (with its revision when present).
 *
 *  E1  no change yields two events: no two events share a source (stream, seq);
 *  E2  every acknowledged create (put, copy, multipart completion) yields
 *      exactly one `created` event with its key, revision, size, sha256 and
 *      (when the ack gave one) ETag;
 *  E3  every other `created` event is a write whose outcome was unknown: a
 *      distinct ambiguous create of the same key with the same bytes (sha256,
 *      size) — so an ambiguous create yields at most one event;
 *  E4  acknowledged commits are ordered as they were acknowledged: their
 *      revisions increase in the order the test issued them;
 *  E5  every acknowledged delete that reported deleted:true yields a
 *      `deleted` event of its key, after the key's previous acknowledged
 *      create and before its next one; the key's `deleted` events number at
 *      least those deletes and at most those plus its ambiguous deletes;
 *  E6  the last event of each key agrees with its final state: the final
 *      version's revision for a present key; a `deleted` event (or no event
 *      at all) for an absent one.
 */
/**
 * Whether an event names a write's bytes: by SHA-256, or — for a composed
 * multipart object, whose event has no digest of the whole
 * (src/store/compose.ts) — by its multipart ETag.
 */
function sameBytes(e: EventLike, w: WriteRecord): boolean {
  if (!e.sha256) return /-\d+$/.test(e.etag ?? "") && w.etag !== undefined && e.etag === w.etag;
  return normDigest(e.sha256) === normDigest(w.sha256);
}

/** A key's writes and events side by side, for a failure's post-mortem. */
function keyHistory(key: string, writes: readonly WriteRecord[], events: readonly EventLike[]): string {
  const ws = writes.filter((w) => w.key === key).map((w) => `#${w.n} ${w.kind} ${w.outcome}${w.revision !== undefined ? `@${w.revision}` : ""}${w.size !== undefined ? ` ${w.size} B` : ""}${w.sha256 ? ` sha256 ${w.sha256.slice(0, 10)}` : ""}`);
  const es = events.filter((e) => e.key === key).map((e) => `${e.eventName.split(":").pop()}@${e.revision} ${e.size} B${e.sha256 ? ` sha256 ${e.sha256.slice(0, 10)}` : ""} (${e.source.stream}:${e.source.seq})`);
  return `the key's writes: [${ws.join(", ")}]; its events: [${es.join(", ")}]`;
}

export function checkEvents(writes: readonly WriteRecord[], events: readonly EventLike[], finalState: ReadonlyMap<string, { present: false } | { present: true; revision: number }>): void {
  const fail = (m: string) => {
    throw new Violation(`events: ${m}`);
  };
  // E1
  const seen = new Set<string>();
  for (const e of events) {
    const id = `${e.source.stream}:${e.source.seq}`;
    if (seen.has(id)) fail(`E1 two events for one change (${id}, key ${e.key})`);
    seen.add(id);
  }
  const created = events.filter((e) => e.eventName.startsWith("s3:ObjectCreated"));
  const deleted = events.filter((e) => e.eventName.startsWith("s3:ObjectRemoved"));
  if (created.length + deleted.length !== events.length) fail(`unknown event names: ${[...new Set(events.map((e) => e.eventName))].join(", ")}`);
  // E2
  const matched = new Set<EventLike>();
  for (const w of writes) {
    if (w.kind !== "create" || w.outcome !== "acked") continue;
    const es = created.filter((e) => e.key === w.key && e.revision === w.revision);
    if (es.length !== 1) {
      fail(`E2 acknowledged write of ${w.key} (revision ${w.revision}, cid ${w.cid}, ${w.size} B) has ${es.length} created events; ${keyHistory(w.key, writes, events)}; ${events.length} events in all`);
    }
    const e = es[0]!;
    if (e.size !== w.size || !sameBytes(e, w) || (w.etag !== undefined && e.etag !== w.etag)) {
      fail(`E2 event of ${w.key} revision ${w.revision} says ${e.size} B sha256 ${e.sha256} etag ${e.etag}; the ack said ${w.size} B sha256 ${w.sha256} etag ${w.etag}`);
    }
    matched.add(e);
  }
  // E3
  const unused = writes.filter((w) => w.kind === "create" && w.outcome === "ambiguous");
  for (const e of created) {
    if (matched.has(e)) continue;
    const i = unused.findIndex((w) => w.key === e.key && w.size === e.size && sameBytes(e, w));
    if (i < 0) fail(`E3 created event of ${e.key} (revision ${e.revision}, ${e.size} B) matches no write (or one ambiguous write yielded two events); ${keyHistory(e.key, writes, events)}`);
    unused.splice(i, 1);
  }
  // E4
  let lastRev = 0;
  for (const w of writes) {
    if (w.kind !== "create" || w.outcome !== "acked") continue;
    if (w.revision! <= lastRev) fail(`E4 acknowledged write of ${w.key} has revision ${w.revision}, not after the previous acknowledged write's ${lastRev}`);
    lastRev = w.revision!;
  }
  // E5
  const keys = new Set([...writes.map((w) => w.key), ...events.map((e) => e.key)]);
  for (const k of keys) {
    const ws = writes.filter((w) => w.key === k);
    const dels = deleted.filter((e) => e.key === k);
    const acked = ws.filter((w) => w.kind === "delete" && w.outcome === "acked" && w.deleted);
    const amb = ws.filter((w) => w.kind === "delete" && w.outcome === "ambiguous");
    if (dels.length < acked.length || dels.length > acked.length + amb.length) fail(`E5 ${k} has ${dels.length} deleted events; ${acked.length} acknowledged deletes removed it and ${amb.length} more may have`);
    for (const d of acked) {
      const before = ws.filter((w) => w.n < d.n && w.kind === "create" && w.outcome === "acked").at(-1)?.revision ?? 0;
      const after = ws.find((w) => w.n > d.n && w.kind === "create" && w.outcome === "acked")?.revision ?? Infinity;
      if (!dels.some((e) => e.source.seq > before && e.source.seq < after)) fail(`E5 the acknowledged delete of ${k} (after revision ${before}) has no deleted event before revision ${after}`);
    }
    // E6
    const last = events.filter((e) => e.key === k).sort((a, b) => a.source.seq - b.source.seq).at(-1);
    const fin = finalState.get(k);
    if (fin?.present) {
      if (!last || !last.eventName.startsWith("s3:ObjectCreated") || last.revision !== fin.revision) fail(`E6 ${k} ends at revision ${fin.revision}; its last event is ${last ? `${last.eventName} revision ${last.revision}` : "none"}`);
    } else if (last && !last.eventName.startsWith("s3:ObjectRemoved")) fail(`E6 ${k} ends deleted; its last event is ${last.eventName} revision ${last.revision}`);
  }
}
