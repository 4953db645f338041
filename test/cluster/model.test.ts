/**
 * The model test: Shoal as its users see it, on a real 3-server JetStream
 * cluster (every route and client link behind a fault proxy), R3 buckets,
 * two storage actors and a replicator. fast-check generates command lists
 * (`fc.commands`) of object operations interleaved with faults, and
 * `fc.asyncModelRun` runs each against the cluster and a plain model
 * (test/helpers/model.ts: key → possible states, where an operation that
 * failed with a timeout or an unavailable service may or may not have
 * happened). Each run gets its own bucket; between runs every fault is undone.
 *
 * Commands
 *   put (small: inline; large: > 512 KiB, the direct path) — also overwrites
 *   get · ranged get · head · list (prefix, delimiter, pagination)
 *   delete · copy · multipart (1 or 2 parts)
 *   SIGKILL / restart of a nats-server · one server's links cut / healed
 *   crash (ActorInstance.kill) / restart of a storage actor or the replicator
 *
 * What is checked, and which promise of docs/architecture.md it proves
 *   after every command —
 *   - an acknowledged write's reply agrees with what was sent (size, ETag,
 *     SHA-256) and its revision is after every earlier acknowledged one ........ 2, 4
 *   - a GET/HEAD/ranged GET returns a state the model allows: the last
 *     acknowledged write, or a write whose outcome was unknown; never an
 *     older acknowledged state, never "missing" after an acknowledged write .. 1, 2
 *   - the bytes of a GET are exactly one version's bytes, and its reply's
 *     size, ETag and SHA-256 are that version's; a ranged GET is that
 *     version's slice (no version is ever mixed with another) ................ 3
 *   - a LIST (every page) is strictly ordered, holds every key the model says
 *     is present (or its common prefix), none it says is absent, and its
 *     entries' size and ETag are a possible version's .......................... 2, 5
 *   - a delete's `deleted` agrees with the model ................................ 2
 *   at the end of each run, once every fault is healed —
 *   - every key reads back (through the SDK, retried only while the cluster
 *     recovers) as the model allows, and a full LIST agrees ................... 1, 5
 *   - SHOAL_EVENTS holds exactly one event per acknowledged change, and for
 *     writes whose outcome was unknown at most one, consistent with the final
 *     state: checks E1–E6 in test/helpers/model.ts (checkEvents) ............. 4
 *
 * Budget: `npm test` runs CI_RUNS runs of at most CI_MAX_COMMANDS commands
 * and starts no run after CI_TIME_LIMIT_MS (the run in progress finishes;
 * after a failure, shrinking gets CI_SHRINK_MS). SHOAL_SOAK=1 runs rounds
 * (each its own seed, SOAK_RUNS runs of up to SHOAL_SOAK_RUN_COMMANDS = 250
 * commands) until SHOAL_SOAK_COMMANDS (10 000) commands ran, and prints one
 * summary line. Data commands are cheap (~60 commands in 3 s); faults cost
 * elections and catch-up (seconds to tens of seconds each), which held a
 * soak to ~0.2 commands/s. So a soak injects a fault only after
 * SHOAL_SOAK_FAULT_GAP (60) commands without one, and draws the commands
 * that undo a fault more often; every check runs as in CI. CI runs are
 * unchanged (gap 0; the extra undo commands are appended to the command
 * list, so CI seeds replay as before; soak seeds from before this change
 * replay other commands).
 *
 * Found so far (see the report of issue 14 and test/cluster/known-issues.test.ts):
 *   - fixed here: an R3 bucket created right after a server restart was
 *     refused as InvalidReplicas (now a retryable ServiceUnavailable;
 *     test/unit/bucket-placement.test.ts); a bucket whose events consumer was
 *     created through a cut-off server got no events after the heal
 *     (test/integration/events-recovery.test.ts);
 *   - KNOWN ISSUES 1 and 2, fixed: right after one server's links are
 *     healed, an acknowledged CreateMultipartUpload was NoSuchUpload to the
 *     next UploadPart (seed 878013413, path 3), and a LIST missed an
 *     acknowledged overwrite (seed 879482286, path 0, replayPath
 *     "DBGAABBACABADADBED:VVV"). Cause, measured: a stale stream leader (the
 *     healed server still believed it led, and answered leader reads from
 *     its old state); fix: read barriers (src/runtime/linear.ts); test:
 *     test/cluster/stale-leader.test.ts.
 *   - same cause, fixed since: a GET/HEAD through a stale leader returned
 *     the replaced version (headObject now reads R>1 heads past the read
 *     barrier; stale-leader.test.ts). Still open: once, an older
 *     acknowledged version back after a multipart whose server was killed
 *     under it (known issue 3): see test/cluster/known-issues.test.ts.
 *   The model is not weakened for them: a run that meets one fails, with its
 *   seed.
 *
 * Replay: every run logs its seed. A failure prints fast-check's report:
 * seed, path and the shrunk command list (with its replayPath). Replay with
 *   SHOAL_SEED=<seed> [SHOAL_PATH=<path>] [SHOAL_REPLAY_PATH=<replayPath>] \
 *     npx ava test/cluster/model.test.ts
 * (timings on a cluster differ run to run; the command list is the same).
 * Add SHOAL_SHRINK=1 to shrink the replayed failure, SHOAL_MODEL_LOG=<file>
 * for the actors' warnings and errors; SHOAL_SOAK_MINUTES bounds a soak.
 */
import test from "ava";
import fc from "fast-check";
import { ShoalError } from "../../src/errors/index.ts";
import type { ObjectMeta } from "../../src/client/index.ts";
import { ABSENT, Contents, Model, Violation, checkEvents, contentBytes, md5hex, multipartEtag, normDigest, sha256b64url, type State, type Version } from "../helpers/model.ts";
import { ShoalCluster, bounded, DeadlineExceeded, type ActorSlot } from "../helpers/shoalcluster.ts";

const SOAK = process.env["SHOAL_SOAK"] === "1";
const CI_RUNS = 5;
const CI_MAX_COMMANDS = 60;
/** A soak round: its own seed, SOAK_RUNS runs of at most SOAK_MAX_COMMANDS commands. */
const SOAK_RUNS = 5;
const SOAK_MAX_COMMANDS = Number(process.env["SHOAL_SOAK_RUN_COMMANDS"] ?? 250);
/**
 * In a soak, a new fault is injected only after this many commands since the
 * last one (faults at a bounded rate: each costs seconds to tens of seconds of
 * elections and catch-up, which is what kept a soak at ~0.2 commands/s), and
 * the commands that undo a fault are drawn more often, so a fault overlaps a
 * few commands rather than dozens of timed-out ones. CI runs keep a gap of 0.
 */
const FAULT_GAP = SOAK ? Number(process.env["SHOAL_SOAK_FAULT_GAP"] ?? 60) : 0;
const SOAK_RECOVERY_EXTRA = SOAK ? 4 : 0;
const CI_TIME_LIMIT_MS = 100_000;
/** How long one run may issue commands in CI (Budget.runMs): a run begun at 100 s ends its commands by 250 s. */
const CI_RUN_MS = 150_000;
/** After a run fails, shrinking may go on this long (CI) before the remaining runs are skipped. */
const CI_SHRINK_MS = 90_000;
const SOAK_SHRINK_MS = 5 * 60_000;
const SOAK_COMMANDS = Number(process.env["SHOAL_SOAK_COMMANDS"] ?? 10_000);
/** Outer bound on any one operation; past it the operation counts as unknown (it may still land). */
const OP_DEADLINE_MS = 90_000;

const KEYS = ["a", "a/1", "a/2", "b/x/1", "b/y", "c", "dd"] as const;
const PREFIXES = ["", "a", "a/", "b/", "c", "z"] as const;
const SMALL_MAX = 4096;
/** Above INLINE_PUT_MAX (512 KiB): the SDK writes the chunks itself (the direct path). */
const LARGE_MIN = 512 * 1024 + 1;
const LARGE_MAX = 1280 * 1024;
const MIN_PART = 5 * 1024 * 1024;

// --- model and real system as the commands see them ---------------------------------

interface World {
  m: Model;
  /** Commands run since the last fault was injected (see FAULT_GAP). */
  sinceFault: number;
  serverDown: number | undefined;
  isolated: number | undefined;
  actorDown: ActorSlot | undefined;
}

interface Stats {
  runs: number;
  commands: number;
  ops: number;
  faults: number;
  unavailable: number;
  ambiguous: number;
  lost: number;
}

interface Real {
  sc: ShoalCluster;
  bucket: string;
  contents: Contents;
  stats: Stats;
  /** Last acknowledged revision in the bucket (E4 is checked live too). */
  lastRevision: number;
}

/** A failure whose outcome is unknown: the operation may or may not have happened. */
function ambiguous(e: unknown): boolean {
  if (e instanceof DeadlineExceeded) return true;
  if (!(e instanceof ShoalError)) return true; // a client-side failure (connection closed, stream cut): unknown
  return e.retryable || e.code === "InternalError" || e.code === "Aborted";
}

function codeOf(e: unknown): string {
  return e instanceof ShoalError ? e.code : e instanceof Error ? e.name : String(e);
}

/** Runs an operation under the outer deadline. */
async function op<T>(r: Real, what: string, f: () => Promise<T>): Promise<{ ok: true; v: T } | { ok: false; e: unknown }> {
  r.stats.ops++;
  try {
    return { ok: true, v: await bounded(f(), OP_DEADLINE_MS, what) };
  } catch (e) {
    if (ambiguous(e)) r.stats.unavailable++;
    return { ok: false, e };
  }
}

function unexpected(what: string, e: unknown): never {
  throw new Violation(`${what} failed with ${codeOf(e)} (${e instanceof Error ? e.message : String(e)}), a definite error the model does not allow`);
}

/**
 * A reply's SHA-256 is the body's — or "" for a composed multipart object
 * (src/store/compose.ts) until its stock copy: then its (multipart) ETag
 * names the version.
 */
function digestOk(info: ObjectMeta, bytes: Uint8Array): boolean {
  return info.sha256 === "" ? /-\d+$/.test(info.etag) : normDigest(info.sha256) === sha256b64url(bytes);
}

function checkAck(r: Real, what: string, ack: ObjectMeta, bytes: Uint8Array, etag: string): void {
  if (ack.size !== bytes.byteLength) throw new Violation(`${what}: ack says ${ack.size} B, ${bytes.byteLength} B were sent`);
  if (ack.etag !== etag) throw new Violation(`${what}: ack ETag ${ack.etag}, expected ${etag}`);
  if (!digestOk(ack, bytes)) throw new Violation(`${what}: ack SHA-256 ${ack.sha256} is not the body's`);
  checkRevision(r, what, ack.revision);
}

function checkRevision(r: Real, what: string, revision: number): void {
  if (!(revision > r.lastRevision)) throw new Violation(`${what}: acknowledged at revision ${revision}, not after the previous acknowledged write's ${r.lastRevision}`);
  r.lastRevision = revision;
}

/**
 * The version `k` holds according to a reply's SHA-256 (every content's
 * digest is known), or its multipart ETag when the reply has no SHA-256 (a
 * composed object before its stock copy: src/store/compose.ts).
 */
function versionFromDigest(m: Model, r: Real, k: string, info: Pick<ObjectMeta, "sha256" | "etag">, what: string): Version {
  const sha = info.sha256;
  let v: Version | undefined;
  if (sha === "") {
    const byEtag = /-\d+$/.test(info.etag) ? m.possible(k).filter((s): s is Version => s !== ABSENT && s.etag === info.etag) : [];
    v = byEtag.length === 1 ? byEtag[0] : undefined;
  } else {
    const c = r.contents.identifyDigest(normDigest(sha), (cid) => m.versionOf(k, cid) !== undefined);
    v = c ? m.versionOf(k, c.cid) : undefined;
  }
  if (!v) {
    m.lost++;
    throw new Violation(`${what} of ${k} names a version (sha256 ${sha || "none"}, ETag ${info.etag}) that is not a possible state: ${m.possible(k).map((s) => (s === ABSENT ? "absent" : `cid ${s.cid}`)).join(" | ")}`);
  }
  return v;
}

function checkMeta(what: string, k: string, v: Version, info: ObjectMeta): void {
  if (info.size !== v.size) throw new Violation(`${what} of ${k}: size ${info.size}, version cid ${v.cid} has ${v.size}`);
  if (v.etag !== undefined && info.etag !== v.etag) throw new Violation(`${what} of ${k}: ETag ${info.etag}, version cid ${v.cid} has ${v.etag}`);
  if (v.revision !== undefined && info.revision !== v.revision) throw new Violation(`${what} of ${k}: revision ${info.revision}, version cid ${v.cid} was acknowledged at ${v.revision}`);
}

// --- data commands -----------------------------------------------------------------

type Cmd = fc.AsyncCommand<World, Real, false>;

class PutCmd implements Cmd {
  constructor(
    readonly key: string,
    readonly size: number,
  ) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const { cid, bytes } = r.contents.make(this.size);
    const v: Version = { cid, size: this.size, etag: md5hex(bytes) };
    const sha = sha256b64url(bytes);
    const res = await op(r, `put ${this.key}`, () => r.sc.client.put(r.bucket, this.key, bytes));
    if (res.ok) {
      checkAck(r, `put ${this.key}`, res.v, bytes, v.etag!);
      w.m.ackCreate(this.key, { ...v, revision: res.v.revision }, sha);
    } else if (ambiguous(res.e)) {
      r.stats.ambiguous++;
      w.m.ambiguousCreate(this.key, v, sha);
    } else unexpected(`put ${this.key}`, res.e);
  }
  toString = () => `put(${JSON.stringify(this.key)}, ${this.size} B${this.size >= LARGE_MIN ? ", direct" : ""})`;
}

class GetCmd implements Cmd {
  constructor(readonly key: string) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const res = await op(r, `get ${this.key}`, async () => {
      const g = await r.sc.client.get(r.bucket, this.key);
      return { info: g.info, bytes: Buffer.from(await g.bytes()) };
    });
    if (!res.ok) {
      if (res.e instanceof ShoalError && res.e.code === "NoSuchKey") w.m.observe(this.key, ABSENT, "get");
      else if (!ambiguous(res.e)) unexpected(`get ${this.key}`, res.e);
      return;
    }
    const { info, bytes } = res.v;
    const c = r.contents.identify(bytes, (cid) => w.m.versionOf(this.key, cid) !== undefined);
    const v = c ? w.m.versionOf(this.key, c.cid) : undefined;
    if (!v) {
      w.m.lost++;
      throw new Violation(`get ${this.key} returned ${bytes.length} B that are ${c ? `cid ${c.cid}, not a possible state of the key` : "no version ever written (mixed or corrupt bytes)"}; possible: ${w.m.possible(this.key).map((s) => (s === ABSENT ? "absent" : `cid ${s.cid}`)).join(" | ")}`);
    }
    checkMeta("get", this.key, v, info);
    if (!digestOk(info, bytes)) throw new Violation(`get ${this.key}: reply SHA-256 ${info.sha256} is not the body's`);
    w.m.observe(this.key, v, "get");
  }
  toString = () => `get(${JSON.stringify(this.key)})`;
}

class HeadCmd implements Cmd {
  constructor(readonly key: string) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const res = await op(r, `head ${this.key}`, () => r.sc.client.head(r.bucket, this.key));
    if (!res.ok) {
      if (res.e instanceof ShoalError && res.e.code === "NoSuchKey") w.m.observe(this.key, ABSENT, "head");
      else if (!ambiguous(res.e)) unexpected(`head ${this.key}`, res.e);
      return;
    }
    const v = versionFromDigest(w.m, r, this.key, res.v, "head");
    checkMeta("head", this.key, v, res.v);
    w.m.observe(this.key, v, "head");
  }
  toString = () => `head(${JSON.stringify(this.key)})`;
}

type RangeSpec = { from: number; to?: number } | { suffix: number };

function rangeHeader(s: RangeSpec): string {
  return "suffix" in s ? `bytes=-${s.suffix}` : `bytes=${s.from}-${s.to ?? ""}`;
}

/** [start, end] (inclusive) of a range over `size` bytes, or undefined when unsatisfiable. */
function resolveRange(s: RangeSpec, size: number): [number, number] | undefined {
  if ("suffix" in s) return size === 0 ? undefined : [Math.max(0, size - s.suffix), size - 1];
  if (s.from >= size) return undefined;
  return [s.from, Math.min(s.to ?? size - 1, size - 1)];
}

class RangeGetCmd implements Cmd {
  constructor(
    readonly key: string,
    readonly range: RangeSpec,
  ) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const res = await op(r, `ranged get ${this.key}`, async () => {
      const g = await r.sc.client.get(r.bucket, this.key, { range: rangeHeader(this.range) });
      return { info: g.info, contentRange: g.contentRange, bytes: Buffer.from(await g.bytes()) };
    });
    if (!res.ok) {
      const code = res.e instanceof ShoalError ? res.e.code : undefined;
      if (code === "NoSuchKey") w.m.observe(this.key, ABSENT, "ranged get");
      else if (code === "InvalidRange") {
        if (!w.m.possible(this.key).some((s) => s !== ABSENT && resolveRange(this.range, s.size) === undefined)) {
          throw new Violation(`ranged get ${this.key} ${rangeHeader(this.range)}: InvalidRange, but it is satisfiable for every possible version`);
        }
      } else if (!ambiguous(res.e)) unexpected(`ranged get ${this.key}`, res.e);
      return;
    }
    const { info, bytes, contentRange } = res.v;
    const v = versionFromDigest(w.m, r, this.key, info, "ranged get");
    checkMeta("ranged get", this.key, v, info);
    const span = resolveRange(this.range, v.size);
    if (!span) throw new Violation(`ranged get ${this.key} ${rangeHeader(this.range)} of ${v.size} B was served, but is unsatisfiable`);
    const want = contentBytes(v.cid, v.size).subarray(span[0], span[1] + 1);
    if (!want.equals(bytes)) throw new Violation(`ranged get ${this.key} ${rangeHeader(this.range)}: ${bytes.length} B that are not bytes ${span[0]}-${span[1]} of version cid ${v.cid} (mixed or corrupt)`);
    if (contentRange !== `bytes ${span[0]}-${span[1]}/${v.size}`) throw new Violation(`ranged get ${this.key}: Content-Range ${contentRange}, expected bytes ${span[0]}-${span[1]}/${v.size}`);
    w.m.observe(this.key, v, "ranged get");
  }
  toString = () => `rangedGet(${JSON.stringify(this.key)}, ${rangeHeader(this.range)})`;
}

class ListCmd implements Cmd {
  constructor(
    readonly prefix: string,
    readonly delimiter: string | undefined,
    readonly maxKeys: number,
  ) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const res = await op(r, "list", () => listAll(r, this.prefix, this.delimiter, this.maxKeys));
    if (!res.ok) {
      if (!ambiguous(res.e)) unexpected("list", res.e);
      return;
    }
    w.m.checkList({ prefix: this.prefix, ...(this.delimiter ? { delimiter: this.delimiter } : {}) }, res.v.entries, res.v.prefixes, res.v.order);
  }
  toString = () => `list(prefix ${JSON.stringify(this.prefix)}${this.delimiter ? `, delimiter ${JSON.stringify(this.delimiter)}` : ""}, maxKeys ${this.maxKeys})`;
}

/** Every page of a listing; checks each page's own shape. */
async function listAll(r: Real, prefix: string, delimiter: string | undefined, maxKeys: number) {
  const entries: Array<{ key: string; etag: string; size: number }> = [];
  const prefixes: string[] = [];
  const order: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 64; page++) {
    const p = await r.sc.client.listPage(r.bucket, { prefix, ...(delimiter ? { delimiter } : {}), maxKeys, ...(token ? { continuationToken: token } : {}) });
    const n = p.contents.length + p.commonPrefixes.length;
    if (n > maxKeys) throw new Violation(`list page holds ${n} entries, maxKeys ${maxKeys}`);
    if (p.isTruncated && !p.nextContinuationToken) throw new Violation("a truncated list page has no continuation token");
    entries.push(...p.contents.map((c) => ({ key: c.key, etag: c.etag, size: c.size })));
    prefixes.push(...p.commonPrefixes);
    order.push(...[...p.contents.map((c) => c.key), ...p.commonPrefixes].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    if (!p.isTruncated) return { entries, prefixes, order };
    token = p.nextContinuationToken;
  }
  throw new Violation("list did not end within 64 pages");
}

class DeleteCmd implements Cmd {
  constructor(readonly key: string) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const res = await op(r, `delete ${this.key}`, () => r.sc.client.delete(r.bucket, this.key));
    if (res.ok) w.m.ackDelete(this.key, res.v.deleted);
    else if (ambiguous(res.e)) {
      r.stats.ambiguous++;
      w.m.ambiguousDelete(this.key);
    } else unexpected(`delete ${this.key}`, res.e);
  }
  toString = () => `delete(${JSON.stringify(this.key)})`;
}

class CopyCmd implements Cmd {
  constructor(
    readonly from: string,
    readonly to: string,
  ) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const res = await op(r, `copy ${this.from} → ${this.to}`, () => r.sc.client.copy({ bucket: r.bucket, key: this.from }, { bucket: r.bucket, key: this.to }));
    if (res.ok) {
      const src = versionFromDigest(w.m, r, this.from, res.v, "copy (source)");
      if (res.v.size !== src.size) throw new Violation(`copy ${this.from} → ${this.to}: ack says ${res.v.size} B, the source version has ${src.size}`);
      w.m.observe(this.from, src, "copy (source)");
      checkRevision(r, `copy ${this.from} → ${this.to}`, res.v.revision);
      w.m.ackCreate(this.to, { cid: src.cid, size: src.size, etag: res.v.etag, revision: res.v.revision }, normDigest(res.v.sha256));
    } else if (res.e instanceof ShoalError && res.e.code === "NoSuchKey") {
      w.m.observe(this.from, ABSENT, "copy (source)");
    } else if (ambiguous(res.e)) {
      r.stats.ambiguous++;
      // any present version of the source may have been copied
      for (const s of w.m.possible(this.from)) {
        if (s !== ABSENT) w.m.ambiguousCreate(this.to, { cid: s.cid, size: s.size }, sha256b64url(contentBytes(s.cid, s.size)));
      }
    } else unexpected(`copy ${this.from} → ${this.to}`, res.e);
  }
  toString = () => `copy(${JSON.stringify(this.from)} → ${JSON.stringify(this.to)})`;
}

class MultipartCmd implements Cmd {
  constructor(
    readonly key: string,
    readonly lastPart: number,
    readonly twoParts: boolean,
  ) {}
  check = () => true;
  async run(w: World, r: Real): Promise<void> {
    const sizes = this.twoParts ? [MIN_PART, this.lastPart] : [this.lastPart];
    const total = sizes.reduce((a, b) => a + b, 0);
    const { cid, bytes } = r.contents.make(total);
    const parts = sizes.map((_, i) => bytes.subarray(sizes.slice(0, i).reduce((a, b) => a + b, 0), sizes.slice(0, i + 1).reduce((a, b) => a + b, 0)));
    const etag = multipartEtag(parts);
    const sha = sha256b64url(bytes);
    const client = r.sc.client;
    const what = `multipart ${this.key}`;
    const created = await op(r, `${what} (create)`, () => client.createMultipart(r.bucket, this.key));
    if (!created.ok) {
      if (!ambiguous(created.e)) unexpected(`${what} (create)`, created.e);
      return; // nothing visible can have happened
    }
    const id = created.v.uploadId;
    const etags: Array<{ partNumber: number; etag: string }> = [];
    for (const [i, p] of parts.entries()) {
      const up = await op(r, `${what} (part ${i + 1})`, () => client.uploadPart(r.bucket, this.key, id, i + 1, p));
      if (!up.ok) {
        if (!ambiguous(up.e)) unexpected(`${what} (part ${i + 1})`, up.e);
        await op(r, `${what} (abort)`, () => client.abortMultipart(r.bucket, this.key, id));
        return;
      }
      if (up.v.etag.replace(/"/g, "") !== md5hex(p)) throw new Violation(`${what}: part ${i + 1} ETag ${up.v.etag}, expected ${md5hex(p)}`);
      etags.push({ partNumber: i + 1, etag: up.v.etag });
    }
    const done = await op(r, `${what} (complete)`, () => client.completeMultipart(r.bucket, this.key, id, etags));
    const v: Version = { cid, size: total, etag };
    if (done.ok) {
      checkAck(r, what, done.v, bytes, etag);
      w.m.ackCreate(this.key, { ...v, revision: done.v.revision }, sha);
    } else if (ambiguous(done.e)) {
      r.stats.ambiguous++;
      w.m.ambiguousCreate(this.key, v, sha);
    } else unexpected(`${what} (complete)`, done.e);
  }
  toString = () => `multipart(${JSON.stringify(this.key)}, parts ${this.twoParts ? `${MIN_PART} B + ` : ""}${this.lastPart} B)`;
}

// --- fault commands ----------------------------------------------------------------

class KillServerCmd implements Cmd {
  constructor(readonly i: number) {}
  check = (w: Readonly<World>) => w.serverDown === undefined && w.isolated === undefined && w.sinceFault >= FAULT_GAP;
  async run(w: World, r: Real): Promise<void> {
    r.stats.faults++;
    w.sinceFault = 0;
    await r.sc.killServer(this.i);
    w.serverDown = this.i;
  }
  toString = () => `killServer(n${this.i + 1})`;
}

class RestartServerCmd implements Cmd {
  check = (w: Readonly<World>) => w.serverDown !== undefined;
  async run(w: World, r: Real): Promise<void> {
    await bounded(r.sc.startServer(w.serverDown!), OP_DEADLINE_MS, "server restart");
    w.serverDown = undefined;
  }
  toString = () => "restartServer()";
}

class IsolateCmd implements Cmd {
  constructor(
    readonly i: number,
    readonly clients: boolean,
  ) {}
  check = (w: Readonly<World>) => w.serverDown === undefined && w.isolated === undefined && w.sinceFault >= FAULT_GAP;
  async run(w: World, r: Real): Promise<void> {
    r.stats.faults++;
    w.sinceFault = 0;
    r.sc.isolate(this.i, this.clients);
    w.isolated = this.i;
  }
  toString = () => `isolate(n${this.i + 1}${this.clients ? ", with its clients" : ", routes only"})`;
}

class HealCmd implements Cmd {
  check = (w: Readonly<World>) => w.isolated !== undefined;
  async run(w: World, r: Real): Promise<void> {
    r.sc.heal();
    w.isolated = undefined;
  }
  toString = () => "heal()";
}

class KillActorCmd implements Cmd {
  constructor(readonly slot: ActorSlot) {}
  check = (w: Readonly<World>) => w.actorDown === undefined && w.sinceFault >= FAULT_GAP;
  async run(w: World, r: Real): Promise<void> {
    r.stats.faults++;
    w.sinceFault = 0;
    await r.sc.killActor(this.slot);
    w.actorDown = this.slot;
  }
  toString = () => `killActor(${this.slot})`;
}

class RestartActorCmd implements Cmd {
  check = (w: Readonly<World>) => w.actorDown !== undefined;
  async run(w: World, r: Real): Promise<void> {
    await r.sc.startActor(w.actorDown!);
    w.actorDown = undefined;
  }
  toString = () => "restartActor()";
}

/**
 * A write with a fault landing while it is in flight (after `delayMs`): the
 * cases where the outcome is truly unknown, and where a write abandoned half
 * way must stay invisible.
 */
class DuringCmd implements Cmd {
  constructor(
    readonly write: Cmd,
    readonly fault: KillServerCmd | KillActorCmd | IsolateCmd,
    readonly delayMs: number,
  ) {}
  check = (w: Readonly<World>) => this.fault.check(w);
  async run(w: World, r: Real): Promise<void> {
    const fault = new Promise((res) => setTimeout(res, this.delayMs)).then(() => this.fault.run(w, r));
    const [a, b] = await Promise.allSettled([this.write.run(w, r), fault]);
    if (b.status === "rejected") throw b.reason;
    if (a.status === "rejected") throw a.reason;
  }
  toString = () => `${this.write.toString()} with ${this.fault.toString()} after ${this.delayMs} ms`;
}

// --- arbitraries --------------------------------------------------------------------

const key = fc.constantFrom(...KEYS);
const smallSize = fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 12, arbitrary: fc.integer({ min: 1, max: SMALL_MAX }) });
const largeSize = fc.integer({ min: LARGE_MIN, max: LARGE_MAX });
const rangeSpec: fc.Arbitrary<RangeSpec> = fc.oneof(
  fc.record({ from: fc.integer({ min: 0, max: 5000 }), to: fc.integer({ min: 0, max: 5000 }) }).map(({ from, to }) => ({ from: Math.min(from, to), to: Math.max(from, to) })),
  fc.record({ from: fc.integer({ min: 0, max: LARGE_MAX }) }),
  fc.record({ from: fc.integer({ min: 0, max: LARGE_MAX }), to: fc.integer({ min: 0, max: 300_000 }) }).map(({ from, to }) => ({ from, to: from + to })),
  fc.record({ suffix: fc.integer({ min: 1, max: 700_000 }) }),
);

const commandArbs: Array<fc.Arbitrary<Cmd>> = [
  // data: the weights are repeated entries
  ...Array.from({ length: 6 }, () => fc.tuple(key, smallSize).map(([k, s]) => new PutCmd(k, s) as Cmd)),
  ...Array.from({ length: 2 }, () => fc.tuple(key, largeSize).map(([k, s]) => new PutCmd(k, s) as Cmd)),
  ...Array.from({ length: 4 }, () => key.map((k) => new GetCmd(k) as Cmd)),
  ...Array.from({ length: 2 }, () => fc.tuple(key, rangeSpec).map(([k, s]) => new RangeGetCmd(k, s) as Cmd)),
  key.map((k) => new HeadCmd(k) as Cmd),
  ...Array.from({ length: 3 }, () =>
    fc.tuple(fc.constantFrom(...PREFIXES), fc.option(fc.constant("/"), { nil: undefined }), fc.constantFrom(1, 2, 3, 1000)).map(([p, d, n]) => new ListCmd(p, d, n) as Cmd),
  ),
  ...Array.from({ length: 3 }, () => key.map((k) => new DeleteCmd(k) as Cmd)),
  ...Array.from({ length: 2 }, () => fc.tuple(key, key).map(([a, b]) => new CopyCmd(a, b) as Cmd)),
  fc
    .tuple(key, fc.oneof({ weight: 3, arbitrary: smallSize }, { weight: 1, arbitrary: largeSize }), fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }))
    .map(([k, s, two]) => new MultipartCmd(k, s, two) as Cmd),
  // faults
  fc.integer({ min: 0, max: 2 }).map((i) => new KillServerCmd(i) as Cmd),
  fc.constant(new RestartServerCmd() as Cmd),
  fc.constant(new RestartServerCmd() as Cmd),
  fc.tuple(fc.integer({ min: 0, max: 2 }), fc.boolean()).map(([i, c]) => new IsolateCmd(i, c) as Cmd),
  fc.constant(new HealCmd() as Cmd),
  fc.constant(new HealCmd() as Cmd),
  fc.constantFrom<ActorSlot>("storage-1", "storage-2", "replicator").map((s) => new KillActorCmd(s) as Cmd),
  fc.constant(new RestartActorCmd() as Cmd),
  fc.constant(new RestartActorCmd() as Cmd),
  // a fault while a write is in flight
  ...Array.from({ length: 2 }, () =>
    fc
      .tuple(
        fc.oneof(
          fc.tuple(key, fc.oneof(smallSize, largeSize)).map(([k, s]) => new PutCmd(k, s) as Cmd),
          key.map((k) => new DeleteCmd(k) as Cmd),
          fc.tuple(key, key).map(([a, b]) => new CopyCmd(a, b) as Cmd),
          fc.tuple(key, largeSize).map(([k, s]) => new MultipartCmd(k, s, false) as Cmd),
        ),
        fc.oneof(
          fc.integer({ min: 0, max: 2 }).map((i) => new KillServerCmd(i)),
          fc.constantFrom<ActorSlot>("storage-1", "storage-2", "replicator").map((s) => new KillActorCmd(s)),
          fc.tuple(fc.integer({ min: 0, max: 2 }), fc.boolean()).map(([i, c]) => new IsolateCmd(i, c)),
        ),
        fc.integer({ min: 0, max: 400 }),
      )
      .map(([c, f, ms]) => new DuringCmd(c, f, ms) as Cmd),
  ),
  // soak: the commands that undo a fault, drawn more often (only while one is
  // in place: their check); appended, so CI seeds replay as before
  ...Array.from({ length: SOAK_RECOVERY_EXTRA }, () => [fc.constant(new RestartServerCmd() as Cmd), fc.constant(new HealCmd() as Cmd), fc.constant(new RestartActorCmd() as Cmd)]).flat(),
];

// --- end-of-run checks ----------------------------------------------------------------

/** Retries a read while the cluster recovers from the last faults (bounded); a definite answer ends it. */
async function settledRead<T>(what: string, f: () => Promise<T>, ms = 90_000): Promise<{ ok: true; v: T } | { ok: false; e: unknown }> {
  const until = Date.now() + ms;
  for (let attempt = 1; ; attempt++) {
    try {
      return { ok: true, v: await bounded(f(), 60_000, what) };
    } catch (e) {
      if (!ambiguous(e)) return { ok: false, e };
      if (Date.now() > until || attempt > 30) throw new Error(`${what} still fails with ${codeOf(e)} ${ms} ms after every fault was healed: ${e instanceof Error ? e.message : String(e)}`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  }
}

async function finalChecks(w: World, r: Real): Promise<void> {
  await r.sc.settle();
  const finalState = new Map<string, { present: false } | { present: true; revision: number }>();
  for (const k of KEYS) {
    const res = await settledRead(`final get ${k}`, async () => {
      const g = await r.sc.client.get(r.bucket, k);
      return { info: g.info, bytes: Buffer.from(await g.bytes()) };
    });
    if (!res.ok) {
      if (!(res.e instanceof ShoalError && res.e.code === "NoSuchKey")) unexpected(`final get ${k}`, res.e);
      w.m.observe(k, ABSENT, "final get");
      finalState.set(k, { present: false });
      continue;
    }
    const c = r.contents.identify(res.v.bytes, (cid) => w.m.versionOf(k, cid) !== undefined);
    const v = c ? w.m.versionOf(k, c.cid) : undefined;
    if (!v) {
      w.m.lost++;
      throw new Violation(`final get ${k}: ${res.v.bytes.length} B that are ${c ? `cid ${c.cid}, not a possible state` : "no version ever written"}; possible: ${w.m.possible(k).map((s) => (s === ABSENT ? "absent" : `cid ${s.cid}`)).join(" | ")}`);
    }
    checkMeta("final get", k, v, res.v.info);
    w.m.observe(k, v, "final get");
    finalState.set(k, { present: true, revision: res.v.info.revision });
  }
  const all = await settledRead("final list", () => listAll(r, "", undefined, 1000));
  if (!all.ok) unexpected("final list", all.e);
  w.m.checkList({ prefix: "" }, all.v.entries, all.v.prefixes, all.v.order);
  const events = await r.sc.eventsOf(r.bucket);
  checkEvents(w.m.writes, events, finalState);
}

// --- the property ------------------------------------------------------------------------

function newStats(): Stats {
  return { runs: 0, commands: 0, ops: 0, faults: 0, unavailable: 0, ambiguous: 0, lost: 0 };
}

/** A run that failed, recorded by the property itself: fast-check drops a failure that its time limit interrupts. */
interface Failure {
  run: number;
  at: number;
  /** fast-check's path to the run, when it failed before any shrinking. */
  path: string | undefined;
  error: string;
  commands: string[];
}

/**
 * The time budget, kept by the property itself: fast-check's
 * interruptAfterTimeLimit abandons a run in flight (it kept running in the
 * background against the cluster) and may report "interrupted" as a failure.
 * Past the budget a run returns at once without commands (counted as
 * skipped, never as checked); after a failure, shrinking gets `shrinkMs` more.
 */
interface Budget {
  newRunsUntil: number;
  shrinkMs: number;
  skipped: number;
  /**
   * How long one run may issue commands. Past it, every fault is undone and
   * the run's remaining commands are skipped (not run, never checked); the
   * final checks then run on the whole cluster. Seed 898979964's fifth run
   * isolated a server's routes while the actors and the SDK stayed connected
   * to it, and every later command waited out its deadline against a server
   * with no JetStream: the run outlived the test's 480 s.
   */
  runMs: number;
  commandsSkipped: number;
}

function property(sc: ShoalCluster, stats: Stats, log: (s: string) => void, o: { maxCommands: number; replayPath?: string; failures: Failure[]; budget: Budget }) {
  let runNo = 0;
  return fc.asyncProperty(fc.commands(commandArbs, { maxCommands: o.maxCommands, size: "max", ...(o.replayPath ? { replayPath: o.replayPath } : {}) }), async (cmds) => {
    const first = o.failures[0];
    const until = first ? first.at + o.budget.shrinkMs : o.budget.newRunsUntil;
    if (Date.now() > until) {
      o.budget.skipped++;
      return;
    }
    const run = ++runNo;
    const bucket = `mt-${Date.now().toString(36)}-${run}`;
    await sc.settle();
    const made = await settledRead(`create bucket ${bucket}`, () => sc.client.createBucket(bucket, { replicas: 3 }));
    if (!made.ok) throw new Error(`create bucket ${bucket} failed with ${codeOf(made.e)}: ${made.e instanceof Error ? made.e.message : String(made.e)}`);
    const w: World = { m: new Model(KEYS), sinceFault: 0, serverDown: undefined, isolated: undefined, actorDown: undefined };
    const r: Real = { sc, bucket, contents: new Contents(), stats, lastRevision: 0 };
    const started = Date.now();
    let n = 0;
    const ran: string[] = [];
    const runUntil = started + o.budget.runMs;
    let overBudget = false;
    const counted = [...cmds].map((c) => ({
      check: (m: Readonly<World>) => c.check(m),
      run: async (m: World, real: Real) => {
        if (Date.now() > runUntil) {
          if (!overBudget) {
            overBudget = true;
            log(`run ${run}: past its ${o.budget.runMs / 1000} s budget after ${n} commands; faults undone, the rest skipped`);
            await real.sc.settle();
            m.serverDown = undefined;
            m.isolated = undefined;
            m.actorDown = undefined;
          }
          o.budget.commandsSkipped++;
          ran.push(`${c.toString()} [skipped]`);
          return;
        }
        n++;
        m.sinceFault++;
        stats.commands++;
        ran.push(c.toString());
        const t0 = Date.now();
        try {
          await c.run(m, real);
        } finally {
          const took = Date.now() - t0;
          if (took > 3000) ran[ran.length - 1] += ` [${(took / 1000).toFixed(1)} s]`;
        }
      },
      toString: () => c.toString(),
    }));
    try {
      await fc.asyncModelRun(() => ({ model: w, real: r }), counted);
      await finalChecks(w, r);
    } catch (e) {
      o.failures.push({ run, at: Date.now(), path: o.failures.length === 0 ? String(run - 1) : undefined, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e), commands: [...ran] });
      log(`run ${run} failed: ${e instanceof Error ? `${e.name}: ${e.message}\n${(e.stack ?? "").split("\n").slice(1, 6).join("\n")}` : String(e)}\n  commands run: ${ran.join(", ")}`);
      throw e;
    } finally {
      stats.runs++;
      stats.lost += w.m.lost;
      if (SOAK === false) log(`  commands: ${ran.join(", ")}`);
      log(`run ${run}: ${n} commands, ${w.m.writes.length} writes (${w.m.writes.filter((x) => x.outcome === "ambiguous").length} unknown) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      await sc.settle().catch(() => undefined);
      await bounded(sc.client.deleteBucket(bucket, { force: true }), 30_000, "bucket delete").catch(() => undefined);
    }
  });
}

/** fast-check's report (seed, path, shrunk command list) and the error that failed the run. */
function report<T>(seed: number, d: fc.RunDetails<T>): string {
  const err = d.errorInstance;
  const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return `seed ${seed}\n${fc.defaultReportMessage(d) ?? "the property failed"}\nerror: ${why}`;
}

/** The failure report: fast-check's own (shrunk) when it has one, else the first failed run as it ran. */
function failureReport<T>(seed: number, d: fc.RunDetails<T>, failures: Failure[], replayEnv: string): string | undefined {
  if (d.failed) return report(seed, d);
  const f = failures[0];
  if (!f) return undefined;
  return `run ${f.run} failed and fast-check did not report it; replay: ${replayEnv}SHOAL_SEED=${seed}${f.path !== undefined ? ` SHOAL_PATH=${f.path}` : ""} npx ava test/cluster/model.test.ts\nerror: ${f.error}\ncommands: ${f.commands.join(", ")}`;
}

function summary(s: Stats, seconds: number): string {
  return `model test: ${s.runs} runs, ${s.commands} commands, ${s.ops} operations (${s.unavailable} unavailable, ${s.ambiguous} with unknown outcome), ${s.faults} faults injected, acknowledged writes lost = ${s.lost}, ${seconds.toFixed(0)} s`;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : Number(v);
}

test("model: Shoal on a 3-server cluster with faults agrees with the model after every command, and SHOAL_EVENTS holds one event per change", async (t) => {
  const shrinking = process.env["SHOAL_SHRINK"] === "1";
  // New runs start only within CI_TIME_LIMIT_MS; a run already going may
  // still heal, restart and wait out its faults (each wait bounded). 280 s
  // was exceeded once in CI by a third run begun at 34 s (seed 895658844).
  t.timeout(SOAK || shrinking ? 24 * 3_600_000 : 480_000);
  const started = Date.now();
  const sc = await ShoalCluster.start(t);
  t.log(`cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const stats = newStats();
  const seed = envInt("SHOAL_SEED") ?? Date.now() % 2 ** 31;
  const path = process.env["SHOAL_PATH"] || undefined;
  const replayPath = process.env["SHOAL_REPLAY_PATH"] || undefined;
  const replaying = envInt("SHOAL_SEED") !== undefined;
  const log = (s: string) => (SOAK ? console.log(s) : t.log(s));

  if (!SOAK || replaying) {
    // a soak round replays with the soak's sizes (SHOAL_SOAK=1 SHOAL_SEED=…)
    const maxCommands = SOAK ? SOAK_MAX_COMMANDS : CI_MAX_COMMANDS;
    log(`seed ${seed} (replay: ${SOAK ? "SHOAL_SOAK=1 " : ""}SHOAL_SEED=${seed} npx ava test/cluster/model.test.ts)`);
    const failures: Failure[] = [];
    const budget: Budget = { newRunsUntil: SOAK || shrinking ? Infinity : started + CI_TIME_LIMIT_MS, shrinkMs: SOAK || shrinking ? Infinity : CI_SHRINK_MS, skipped: 0, runMs: SOAK || shrinking ? Infinity : CI_RUN_MS, commandsSkipped: 0 };
    const d = await fc.check(property(sc, stats, log, { maxCommands, failures, budget, ...(replayPath ? { replayPath } : {}) }), {
      seed,
      // SHOAL_SHRINK=1 with SHOAL_PATH: shrink the replayed failure instead of stopping at it
      ...(path ? { path, endOnFailure: process.env["SHOAL_SHRINK"] !== "1" } : {}),
      numRuns: SOAK ? SOAK_RUNS : CI_RUNS,
    });
    log(summary(stats, (Date.now() - started) / 1000));
    const failed = failureReport(seed, d, failures, SOAK ? "SHOAL_SOAK=1 " : "");
    if (failed) t.fail(failed);
    if (budget.skipped) log(`${budget.skipped} run(s) skipped: past the time budget`);
    if (budget.commandsSkipped) log(`${budget.commandsSkipped} command(s) skipped: their run was past its ${CI_RUN_MS / 1000} s budget`);
    t.true(stats.runs >= 1, "no run completed within the time budget");
    t.is(stats.lost, 0);
    return;
  }
  // Soak: rounds of runs, each round with its own logged seed, until SOAK_COMMANDS commands ran.
  // A failed round is reported (seed, shrunk command list) and the soak goes
  // on, so one soak shows every kind of failure it meets; it fails at the end.
  // SHOAL_SOAK_MINUTES stops it from starting new rounds after that long.
  const stopAt = started + (envInt("SHOAL_SOAK_MINUTES") ?? 24 * 60) * 60_000;
  const failedRounds: string[] = [];
  for (let round = 0; stats.commands < SOAK_COMMANDS && Date.now() < stopAt; round++) {
    const s = (seed + round) % 2 ** 31;
    console.log(`soak round ${round}: seed ${s} (replay: SHOAL_SOAK=1 SHOAL_SEED=${s} npx ava test/cluster/model.test.ts); ${stats.commands} commands so far`);
    const failures: Failure[] = [];
    const budget: Budget = { newRunsUntil: Infinity, shrinkMs: SOAK_SHRINK_MS, skipped: 0, runMs: Infinity, commandsSkipped: 0 };
    const d = await fc.check(property(sc, stats, log, { maxCommands: SOAK_MAX_COMMANDS, failures, budget }), { seed: s, numRuns: SOAK_RUNS });
    const failed = failureReport(s, d, failures, "SHOAL_SOAK=1 ");
    if (failed) {
      failedRounds.push(failed);
      console.log(`soak round ${round} FAILED:\n${failed}`);
    }
    console.log(`so far: ${summary(stats, (Date.now() - started) / 1000)}, failed rounds ${failedRounds.length}`);
  }
  console.log(`${summary(stats, (Date.now() - started) / 1000)}, failed rounds ${failedRounds.length}${stats.commands < SOAK_COMMANDS ? ` (stopped by SHOAL_SOAK_MINUTES before ${SOAK_COMMANDS} commands)` : ""}`);
  for (const f of failedRounds) t.log(f);
  t.is(failedRounds.length, 0, "failed soak rounds (each reported above with its seed)");
  t.is(stats.lost, 0);
  t.true(stats.commands >= SOAK_COMMANDS, `only ${stats.commands} of ${SOAK_COMMANDS} commands ran`);
});
