/**
 * src/jet — the JetStream primitives of Shoal's data path, and nothing else:
 * publish with an id and classified retries, atomic batches, fast-ingest
 * batches, Direct Get and batched walks with read-ahead, deletes and
 * purges, the sequences of a subject, per-message TTLs and the stream
 * features they need. A leaf: it imports only the NATS clients, src/errors
 * and src/runtime/backoff — never src/store or actors. docs/datapath.md
 * says which path uses which primitive, and what was measured.
 */
export { classify, isConflict, jsCode, toJetError, JS_CODES, type JetFailure } from "./errors.ts";
export { H, ttlValue } from "./headers.ts";
export { publish, buildHeaders, type PublishOptions, type HeaderOptions } from "./publish.ts";
export { publishAtomic, ATOMIC_MAX_MSGS, ATOMIC_CODES, type BatchMsg, type AtomicAck } from "./atomic.ts";
export { ingest, type IngestOptions, type IngestResult } from "./ingest.ts";
export { getSeq, getLast, readSubject, readSeqs, type ReadOptions, type ReadSeqsOptions, type ReadStats } from "./direct.ts";
export { deleteSeqs, purgeSubject } from "./delete.ts";
export { subjectSeqs, subjectCount } from "./seqs.ts";
export { enableFeatures, type StreamFeatures } from "./stream.ts";
export { consumeUntilGone, dropOrdered, type Consuming } from "./consume.ts";
