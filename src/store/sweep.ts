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
  orphansPurged: number;
  orphanMessagesPurged: number;
}

interface Scan {
  referenced: Set<string>;
  markers: Array<{ subject: string; seq: number; ms: number }>;
  count: number;
}

/** Reads the last metadata message of every key (one ordered pass). */
async function scanMetadata(js: JetStreamClient, jsm: JetStreamManager, store: StoreRef): Promise<Scan> {
  const scan: Scan = { referenced: new Set(), markers: [], count: 0 };
  const filter = metaSubjectAll(store.name);
  const last = await jsm.direct.getMessage(store.stream, { last_by_subj: filter }).catch(() => null);
  if (!last) return scan;
  const consumer = await js.consumers.get(store.stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.LastPerSubject });
  const msgs = await consumer.consume();
  try {
    for await (const m of msgs) {
      scan.count++;
      try {
        const meta = decodeStoredMeta(m.data);
        if (meta.deleted) scan.markers.push({ subject: m.subject, seq: m.seq, ms: Math.floor(m.info.timestampNanos / 1e6) });
        else scan.referenced.add(meta.nuid);
      } catch {
        // foreign metadata: leave it alone
      }
      if (m.info.pending === 0 || m.seq >= last.seq) break;
    }
  } finally {
    await msgs.close().catch(() => undefined);
  }
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
  const report: SweepReport = { bucket: store.name, metadata: 0, markersPurged: 0, markersHeld: 0, orphansPurged: 0, orphanMessagesPurged: 0 };
  const scan = await scanMetadata(js, jsm, store);
  report.metadata = scan.count;

  const old = scan.markers.filter((m) => now - m.ms > o.markerTtlMs);
  if (old.length > 0) {
    const floor = await durableFloor(jsm, store.stream);
    for (const m of old) {
      if (m.seq >= floor) {
        report.markersHeld++;
        continue;
      }
      // Message deletes (a purge would move consumers, see writer.ts deleteSeqs):
      // first any older metadata left on the subject, the marker last, so
      // that an older version can never become the key's last message.
      const older = (await seqsOfSubject(jsm, store.stream, m.subject)).filter((q) => q < m.seq);
      await deleteSeqs(jsm, store.stream, older);
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
