/**
 * Garbage sweep of one object store: what a delete or a failed put leaves
 * behind that the request path cannot safely remove at once.
 *
 * - Delete markers older than the marker TTL are purged, so that a bucket's
 *   metadata does not grow with every key ever deleted (the stock store keeps
 *   them for ever). The purge is bounded by the marker's sequence
 *   (one message delete by sequence), so a put that lands meanwhile is never touched, and a
 *   marker is kept while a durable consumer of the stream (the replicator's
 *   commit-log reader) has not acknowledged past it.
 * - Orphan chunks — a chunk subject that no live metadata refers to, last
 *   written longer ago than the grace period — are purged. They come from a
 *   commit whose outcome was unknown (kept on purpose, see writer.ts), or a
 *   purge that failed during a failover. The grace period is far longer than
 *   any put takes between its last chunk and its commit.
 *
 * Every step is idempotent, so two storage instances sweeping the same
 * bucket at once do no harm (only double work).
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { chunkSubjectAll, metaSubjectAll } from "../subjects/index.ts";
import { decodeStoredMeta } from "./format.ts";
import { deleteSeqs, seqsOfSubject, type StoreRef } from "./writer.ts";

export interface SweepOptions {
  /** Purge delete markers older than this. */
  markerTtlMs: number;
  /** Purge unreferenced chunks last written longer ago than this. */
  orphanGraceMs: number;
  /** Chunk nuids referenced from elsewhere (parts of open multipart uploads): never orphans. */
  alsoReferenced?: () => Promise<Set<string>>;
  now?: () => number;
}

export interface SweepReport {
  bucket: string;
  metadata: number;
  markersPurged: number;
  /** Markers old enough but kept because a durable consumer has not read them. */
  markersHeld: number;
  /** Replaced metadata messages removed (once every durable reader had passed them). */
  supersededRemoved: number;
  orphansPurged: number;
  orphanMessagesPurged: number;
}

interface Scan {
  referenced: Set<string>;
  markers: Array<{ subject: string; seq: number; ms: number }>;
  /** Metadata messages a later one on the same subject replaces. */
  superseded: number[];
  /** Keys (subjects) with metadata. */
  count: number;
}

/**
 * Reads every metadata message once, in order (one ordered pass): the last
 * one of each key says what is live or deleted; the earlier ones are
 * superseded versions the writer leaves in place so that a lagging commit-log
 * reader (the replicator) still sees every change.
 */
async function scanMetadata(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef): Promise<Scan> {
  const scan: Scan = { referenced: new Set(), markers: [], superseded: [], count: 0 };
  const filter = metaSubjectAll(store.name);
  const last = await jsm.direct.getMessage(store.stream, { last_by_subj: filter }).catch(() => null);
  if (!last) return scan;
  const lastOf = new Map<string, { seq: number; deleted: boolean; nuid: string | undefined; ms: number }>();
  const consumer = await js.consumers.get(store.stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
  const msgs = await consumer.consume();
  try {
    for await (const m of msgs) {
      const prev = lastOf.get(m.subject);
      if (prev) scan.superseded.push(prev.seq);
      let entry = { seq: m.seq, deleted: false, nuid: undefined as string | undefined, ms: Math.floor(m.info.timestampNanos / 1e6) };
      try {
        const meta = decodeStoredMeta(m.data);
        entry = { ...entry, deleted: meta.deleted === true, nuid: meta.deleted ? undefined : meta.nuid };
      } catch {
        // foreign metadata: never treated as a marker, never as a reference
      }
      lastOf.set(m.subject, entry);
      if (m.info.pending === 0 || m.seq >= last.seq) break;
    }
  } finally {
    await msgs.close().catch(() => undefined);
  }
  for (const [subject, e] of lastOf) {
    if (e.deleted) scan.markers.push({ subject, seq: e.seq, ms: e.ms });
    else if (e.nuid) scan.referenced.add(e.nuid);
  }
  scan.count = lastOf.size;
  return scan;
}

/** Lowest stream sequence a durable consumer of the stream has not acknowledged; Infinity when none. */
async function durableFloor(jsm: JetStreamManager, stream: string): Promise<number> {
  let floor = Infinity;
  for await (const ci of jsm.consumers.list(stream)) {
    if (!ci.config.durable_name) continue;
    floor = Math.min(floor, (ci.ack_floor?.stream_seq ?? 0) + 1);
  }
  return floor;
}

export async function sweepStore(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef, o: SweepOptions): Promise<SweepReport> {
  const now = (o.now ?? Date.now)();
  const report: SweepReport = { bucket: store.name, metadata: 0, markersPurged: 0, markersHeld: 0, supersededRemoved: 0, orphansPurged: 0, orphanMessagesPurged: 0 };
  const scan = await scanMetadata(js, jsm, store);
  report.metadata = scan.count;

  const old = scan.markers.filter((m) => now - m.ms > o.markerTtlMs);
  if (old.length > 0 || scan.superseded.length > 0) {
    const floor = await durableFloor(jsm, store.stream);
    // Superseded versions first (only those every durable reader has passed),
    // so that deleting a marker can never expose an older version.
    const gone = scan.superseded.filter((q) => q < floor);
    await deleteSeqs(jsm, store.stream, gone);
    report.supersededRemoved = gone.length;
    for (const m of old) {
      if (m.seq >= floor || (await hasOlder(jsm, store, m))) {
        report.markersHeld++;
        continue;
      }
      // one message delete: a purge would move consumers (writer.ts, deleteSeqs)
      await deleteSeqs(jsm, store.stream, [m.seq]);
      report.markersPurged++;
    }
  }

  // Orphan candidates: unreferenced chunk subjects last written before the grace period.
  const info = await jsm.streams.info(store.stream, { subjects_filter: chunkSubjectAll(store.name) });
  const prefix = chunkSubjectAll(store.name).slice(0, -1);
  const candidates: Array<{ subject: string; id: string; lastSeq: number }> = [];
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const id = subject.slice(prefix.length);
    if (scan.referenced.has(id)) continue;
    const lastChunk = await jsm.direct.getMessage(store.stream, { last_by_subj: subject }).catch(() => null);
    if (!lastChunk || now - lastChunk.time.getTime() <= o.orphanGraceMs) continue;
    candidates.push({ subject, id, lastSeq: lastChunk.seq });
  }
  if (candidates.length === 0) return report;
  // A put may have committed one of them after the first scan: look again.
  const fresh = await scanMetadata(js, jsm, store);
  const other = (await o.alsoReferenced?.()) ?? new Set<string>();
  for (const c of candidates) {
    if (fresh.referenced.has(c.id) || other.has(c.id)) continue;
    const seqs = (await seqsOfSubject(jsm, store.stream, c.subject)).filter((q) => q <= c.lastSeq);
    await deleteSeqs(jsm, store.stream, seqs);
    if (seqs.length > 0) {
      report.orphansPurged++;
      report.orphanMessagesPurged += seqs.length;
    }
  }
  return report;
}

/** True when an older metadata message is still stored under the marker's subject. */
async function hasOlder(jsm: JetStreamManager, store: StoreRef, m: { subject: string; seq: number }): Promise<boolean> {
  return (await seqsOfSubject(jsm, store.stream, m.subject)).some((q) => q < m.seq);
}
