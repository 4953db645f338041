/**
 * Header names of the JetStream publish protocol that src/jet sets itself
 * (nats-server ADR-31 per-message TTL, ADR-50 atomic batches), and the TTL
 * value format. Pure.
 */
export const H = Object.freeze({
  msgId: "Nats-Msg-Id",
  expectedLastSeq: "Nats-Expected-Last-Sequence",
  expectedLastSubjectSeq: "Nats-Expected-Last-Subject-Sequence",
  expectedLastSubjectSeqSubject: "Nats-Expected-Last-Subject-Sequence-Subject",
  rollup: "Nats-Rollup",
  ttl: "Nats-TTL",
  batchId: "Nats-Batch-Id",
  batchSeq: "Nats-Batch-Sequence",
  batchCommit: "Nats-Batch-Commit",
  markerReason: "Nats-Marker-Reason",
});

/** Per-message TTL as the `Nats-TTL` header value: whole seconds (the server's floor is 1 s), or "never". */
export function ttlValue(ttl: number | "never"): string {
  if (ttl === "never") return "never";
  if (!Number.isFinite(ttl) || ttl < 1000) throw new RangeError(`a message TTL is at least 1000 ms (got ${ttl})`);
  return `${Math.ceil(ttl / 1000)}s`;
}
