/**
 * The event a commit-log message stands for (actors/replicator/logic.ts
 * eventFor): S3's names for multipart completions, composed or copied, and
 * none for a composed object's restatement in the stock form (the same
 * version again, not a change: docs/events.md).
 */
import test from "ava";
import { eventFor, isMultipart } from "../../actors/replicator/logic.ts";
import { buildHeaders, DIGEST_PREFIX, type ObjectInfo, type StoredMeta } from "../../src/store/format.ts";
import { PARTS_META, metaSubject } from "../../src/subjects/index.ts";

const SHA = "A".repeat(43) + "=";
const meta = (o: Partial<StoredMeta> & { headers: Record<string, string[]> }): Uint8Array =>
  new TextEncoder().encode(JSON.stringify({ name: "k", bucket: "evb", nuid: "N1", size: 10, chunks: 1, mtime: "2026-12-02T00:00:00Z", digest: `${DIGEST_PREFIX}${SHA}`, deleted: false, ...o }));
const ev = (data: Uint8Array) => eventFor("OBJ_evb", "inc", metaSubject("evb", "k"), 7, 0, data, "evb");

test("a put is s3:ObjectCreated:Put; a multipart completion, composed or copied, is s3:ObjectCreated:CompleteMultipartUpload", (t) => {
  t.is(ev(meta({ headers: buildHeaders({ etag: "a".repeat(32), chunkSeqs: [3] }) }))?.event.eventName, "s3:ObjectCreated:Put");
  const parts = [{ id: "P1", size: 10, chunkSize: 10, chunks: 1, seqs: [3], sha256: SHA }];
  const composed = ev(meta({ digest: "", deleted: true, headers: buildHeaders({ etag: `${"b".repeat(32)}-1`, chunkSeqs: undefined, parts, userMeta: { [PARTS_META]: "10" } }) }));
  t.is(composed?.kind, "created", "a composed object is live to Shoal although stock readers see it deleted");
  t.is(composed?.event.eventName, "s3:ObjectCreated:CompleteMultipartUpload");
  t.is(composed?.event.sha256, "");
  t.is(ev(meta({ headers: buildHeaders({ etag: `${"b".repeat(32)}-1`, chunkSeqs: [3], userMeta: { [PARTS_META]: "10" } }) }))?.event.eventName, "s3:ObjectCreated:CompleteMultipartUpload", "copied completion");
  t.is(ev(meta({ headers: buildHeaders({ etag: "c".repeat(32), chunkSeqs: [3], userMeta: { [PARTS_META]: "10" } }) }))?.event.eventName, "s3:ObjectCreated:Put", "a CopyObject of a multipart object (MD5 ETag)");
  t.is(ev(meta({ headers: buildHeaders({ etag: `${"b".repeat(32)}-1`, chunkSeqs: [9], restates: 5, userMeta: { [PARTS_META]: "10" } }) })), undefined, "the restatement is no event");
});

test("isMultipart needs the multipart ETag and the part sizes, or the parts", (t) => {
  const base = { etag: "d".repeat(32), userMeta: {} } as unknown as ObjectInfo;
  t.false(isMultipart(base));
  t.false(isMultipart({ ...base, etag: `${"d".repeat(32)}-3` }));
  t.true(isMultipart({ ...base, etag: `${"d".repeat(32)}-3`, userMeta: { [PARTS_META]: "5*3" } }));
  t.true(isMultipart({ ...base, parts: [] }));
});
