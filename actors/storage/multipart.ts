/**
 * Multipart endpoints of the storage actor (shoal.v1.mpu.<op>.<bucket>):
 * uploads and their parts live in KV shoal_multipart (src/store/multipart.ts).
 */
import type { Request, EndpointSpec } from "../../src/runtime/index.ts";
import type { MpuOp } from "../../src/subjects/index.ts";
import { assertStream } from "../../src/store/reader.ts";
import { storeInfo, storeRef } from "../../src/store/bucket.ts";
import { createUpload, getUpload, uploadPart, recordPart, completeUpload, removeUpload, listParts, listUploads, type PartRecord } from "../../src/store/multipart.ts";
import { claimedChunks } from "../../src/store/claim.ts";
import { countBytes } from "../../src/metrics/index.ts";
import { decodeMpuCreate, decodeMpuPart, decodeMpuComplete, decodeMpuRef, decodeMpuParts, decodeMpuList, infoJson, pageUploads } from "./logic.ts";
import { bucketOf, type StorageState } from "./state.ts";
import type { BodyTransport } from "./body.ts";

export function multipartHandlers(s: StorageState, { withBody, offerDirect }: BodyTransport): Array<[MpuOp, EndpointSpec["handler"]]> {
  const { ctx, jet, uploads, versionOpt } = s;
  const mpuCreate = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const c = decodeMpuCreate(req.json());
    await storeInfo(ctx.jsm, storeRef(bucket)); // NoSuchBucket
    const u = await createUpload(uploads, bucket, c.key, { ...(c.contentType ? { contentType: c.contentType } : {}), userMeta: c.metadata });
    return { v: 1, bucket, key: u.key, uploadId: u.uploadId };
  };

  const mpuPart = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const p = decodeMpuPart(req.header);
    const store = storeRef(bucket);
    const upload = await getUpload(uploads, bucket, p.uploadId, p.key);
    const expect = { ...(p.md5Hex ? { expectMd5Hex: p.md5Hex } : {}), ...(p.sha256B64 ? { expectSha256B64: p.sha256B64 } : {}) };
    const done = (rec: PartRecord) => {
      countBytes("storage", "in", rec.size);
      return { v: 1, partNumber: rec.n, etag: rec.etag, size: rec.size, lastModified: rec.mtime };
    };
    await assertStream(ctx.jsm, store.stream);
    if (p.direct) {
      return offerDirect(
        req,
        bucket,
        store,
        async (claim, id, chunkSize) => recordPart(jet, uploads, store, bucket, upload, p.partNumber, await claimedChunks(jet, store, id, chunkSize, claim), expect),
        (m, rec) => m.respond(JSON.stringify(done(rec))),
        { key: p.key.slice(0, 128), part: p.partNumber },
      );
    }
    return withBody(req, bucket, p.stream, "part", async (body) => done(await uploadPart(jet, uploads, store, bucket, upload, p.partNumber, body, { ...expect, signal: ctx.transfers })));
  };

  const mpuComplete = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const c = decodeMpuComplete(req.json());
    // a completed upload too: a repeated completion returns the same result (S3)
    const upload = await getUpload(uploads, bucket, c.uploadId, c.key, { completed: true });
    const info = await completeUpload(jet, uploads, storeRef(bucket), bucket, upload, c.parts, { signal: ctx.transfers, ...(await versionOpt(bucket)) });
    // composed (no byte copied): the stock form follows in the background (src/store/compose.ts)
    if (info.parts) void s.restate(bucket, info.key, info.revision).catch(() => undefined);
    return infoJson(bucket, info);
  };

  const mpuAbort = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const a = decodeMpuRef(req.json());
    await getUpload(uploads, bucket, a.uploadId, a.key);
    await removeUpload(jet, uploads, storeRef(bucket), bucket, a.uploadId);
    return { v: 1, aborted: true };
  };

  const mpuParts = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const q = decodeMpuParts(req.json());
    await getUpload(uploads, bucket, q.uploadId, q.key);
    const all = (await listParts(uploads, bucket, q.uploadId)).filter((p) => p.n > q.partNumberMarker);
    const page = all.slice(0, q.maxParts);
    return {
      v: 1,
      bucket,
      key: q.key,
      uploadId: q.uploadId,
      parts: page.map((p) => ({ partNumber: p.n, etag: p.etag, size: p.size, lastModified: p.mtime })),
      isTruncated: all.length > page.length,
      ...(all.length > page.length ? { nextPartNumberMarker: page[page.length - 1]!.n } : {}),
    };
  };

  const mpuList = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const q = decodeMpuList(req.json());
    await storeInfo(ctx.jsm, storeRef(bucket));
    return { v: 1, bucket, ...pageUploads(await listUploads(uploads, bucket), q) };
  };

  return [
    ["create", mpuCreate],
    ["part", mpuPart],
    ["complete", mpuComplete],
    ["abort", mpuAbort],
    ["parts", mpuParts],
    ["list", mpuList],
  ];
}
