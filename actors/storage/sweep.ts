/**
 * The storage actor's sweep: on request (shoal.ctl.storage.sweep) and on a
 * jittered loop (the first soon after a start), every bucket's garbage (src/store/sweep.ts) and expired
 * multipart uploads.
 */
import type { Request } from "../../src/runtime/index.ts";
import { storeInfo, storeRef } from "../../src/store/bucket.ts";
import { sweepStore, type SweepReport } from "../../src/store/sweep.ts";
import { setComposedPending } from "../../src/metrics/index.ts";
import { partChunkIds, expireUploads } from "../../src/store/multipart.ts";
import { listBuckets } from "../../src/store/registry.ts";
import { decodeSweep } from "./logic.ts";
import { sleepUnlessAborted, type StorageState } from "./state.ts";

/**
 * After a storage-pressure sweep that removed nothing, the next waits this
 * long (ms), doubled after each further one that removed nothing, up to the
 * sweep interval: a store full of live data is not rescanned every few
 * seconds for as long as it stays full.
 */
export const PRESSURE_SWEEP_GAP_MS = 5000;

export function sweeper(s: StorageState) {
  const { ctx, jet, registry, uploads } = s;
  const sweepOpts = (bucket: string, readGraceMs: number) => ({
    markerTtlMs: ctx.storage.markerTtlMs,
    orphanGraceMs: ctx.storage.orphanGraceMs,
    readGraceMs,
    alsoReferenced: () => partChunkIds(uploads, bucket),
    restate: (key: string, revision: number) => s.restate(bucket, key, revision).catch(() => "failed" as const),
    restateAfterMs: ctx.storage.restateAfterMs,
  });
  // Buckets whose last sweep here left composed objects stalled (their copy
  // failing): carried in this instance's heartbeats, where the
  // health-monitor raises `restate-stalled` for them.
  const stalled = new Map<string, number>();
  const report = (bucket: string, n: number) => {
    if (n > 0) stalled.set(bucket, n);
    else stalled.delete(bucket);
  };
  const sweep = async (only?: string, readGraceMs = ctx.storage.readGraceMs): Promise<Array<SweepReport & { uploadsExpired: number }>> => {
    const names = only !== undefined ? [only] : (await listBuckets(registry)).map((b) => b.name);
    const reports: Array<SweepReport & { uploadsExpired: number }> = [];
    if (only === undefined) for (const b of [...stalled.keys()]) if (!names.includes(b)) stalled.delete(b);
    for (const name of names) {
      if (ctx.signal.aborted) break;
      const store = storeRef(name);
      if (only !== undefined) await storeInfo(ctx.jsm, store); // NoSuchBucket
      try {
        const expired = await expireUploads(jet, uploads, store, name, ctx.storage.multipartMaxAgeMs);
        const r = await sweepStore(ctx.js, ctx.jsm, store, sweepOpts(name, readGraceMs));
        setComposedPending(name, r.composedPending);
        report(name, r.composedStalled);
        reports.push({ ...r, uploadsExpired: expired });
      } catch (e) {
        if (only !== undefined) throw e;
        ctx.log.warn({ err: e, bucket: name }, "sweep of a bucket failed; next round retries");
      }
    }
    ctx.setStatus(stalled.size > 0 ? { restateStalled: Object.fromEntries(stalled) } : {});
    const stalledNow = reports.filter((r) => r.composedStalled > 0);
    if (stalledNow.length > 0) ctx.log.warn({ buckets: stalledNow.map((r) => ({ bucket: r.bucket, stalled: r.composedStalled })) }, "composed multipart objects whose copy into the stock form keeps failing");
    const removed = reports.filter((r) => r.markersPurged + r.orphansPurged + r.uploadsExpired > 0);
    if (removed.length > 0) ctx.log.info({ reports: removed }, "sweep removed garbage");
    return reports;
  };
  /**
   * Storage pressure. What fills a store that takes overwrites is mostly
   * versions nobody can read any more: a replaced version keeps its chunks
   * for storage.readGraceMs (10 min), so that reads already streaming it
   * finish. Measured: `shoal dev` (max_file_store 10 GB) taking 64 MiB
   * overwrites of one key at ~130 MB/s refused every write after ~77 s, and
   * would have gone on refusing them until the grace ran out. So when
   * JetStream storage nears its limit (the health-monitor asks, through the
   * sweep control with `pressure: true`), or when this instance sees a write
   * refused for want of storage, it sweeps every bucket at once with
   * storage.pressureReadGraceMs (30 s) instead: a read
   * of a replaced version older than that may then fail (a typed error, or
   * over S3 a body cut short — never other bytes), and writes go on. One such
   * sweep at a time; after one that removed nothing, none for
   * PRESSURE_SWEEP_GAP_MS, then twice that, and so on up to the sweep
   * interval (reset by one that removed something).
   */
  let relieving = false;
  // after a relief that removed nothing, the next waits (the store is full of live data: sweeping
  // again at once would only repeat the scan, of every bucket's metadata); after one that made
  // room, the next may come as soon as the store fills again
  let quietUntil = -Infinity;
  let idleGapMs = PRESSURE_SWEEP_GAP_MS;
  const maxGapMs = Math.max(PRESSURE_SWEEP_GAP_MS, ctx.storage.sweepIntervalMs || 600_000);
  /** One storage-pressure sweep (see above); undefined when one runs already or the last ones found nothing a moment ago. */
  const relieve = async (cause: "refused" | "near-limit"): Promise<Array<SweepReport & { uploadsExpired: number }> | undefined> => {
    if (relieving || ctx.signal.aborted || performance.now() < quietUntil) return undefined;
    relieving = true;
    const graceMs = Math.min(ctx.storage.pressureReadGraceMs, ctx.storage.readGraceMs);
    // a refused write is news (warn); the health-monitor's request comes at every look while
    // storage stays high (info)
    const log = cause === "refused" ? ctx.log.warn.bind(ctx.log) : ctx.log.info.bind(ctx.log);
    log({ readGraceMs: graceMs, cause: cause === "refused" ? "JetStream refused a write for want of storage" : "the health-monitor: JetStream storage near its limit" }, "storage pressure: sweeping replaced versions now");
    let removed = 0;
    try {
      const reports = await sweep(undefined, graceMs);
      removed = reports.reduce((n, r) => n + r.replacedChunksRemoved + r.orphansPurged + r.uploadsExpired, 0);
      ctx.log.info({ removed, replacedHeld: reports.reduce((n, r) => n + r.replacedHeld, 0) }, "storage-pressure sweep done");
      return reports;
    } finally {
      relieving = false;
      if (removed > 0) {
        quietUntil = -Infinity;
        idleGapMs = PRESSURE_SWEEP_GAP_MS;
      } else {
        quietUntil = performance.now() + idleGapMs;
        idleGapMs = Math.min(2 * idleGapMs, maxGapMs);
      }
    }
  };
  s.storageFullListeners.add(() => {
    relieve("refused").catch((e: unknown) => ctx.log.warn({ err: e }, "storage-pressure sweep failed"));
  });

  const sweepControl = async (req: Request) => {
    const o = req.data.byteLength > 0 ? decodeSweep(req.json()) : {};
    if (o.pressure) {
      const reports = await relieve("near-limit");
      return reports ? { v: 1, reports } : { v: 1, reports: [], skipped: true };
    }
    return { v: 1, reports: await sweep(o.bucket) };
  };
  const sweepLoop = async () => {
    const every = ctx.storage.sweepIntervalMs;
    if (every === 0) return;
    // The first sweep comes soon after a start (storage.firstSweepMs, 30 s), not a whole
    // interval later: it finishes the background copies a restart interrupted (composed
    // multipart objects stock tools cannot see yet) and reports the ones that keep failing,
    // whose restate-stalled alert would otherwise resolve at every restart and come back
    // only an interval later.
    let wait = Math.min(every, ctx.storage.firstSweepMs);
    while (!ctx.signal.aborted) {
      // jittered, so instances started together do not sweep in lockstep
      await sleepUnlessAborted(wait * (0.8 + 0.4 * Math.random()), ctx.signal);
      if (!ctx.signal.aborted) await sweep();
      wait = every;
    }
  };

  return { sweepControl, sweepLoop };
}
