/** Multipart uploads: create, upload a part (or copy one), complete, abort, list parts and uploads. */
import { ShoalError, toShoalError } from "../../errors/index.ts";
import type { ObjectMeta } from "../../client/index.ts";
import { awsEncode } from "../auth.ts";
import { childText, childrenNamed, xml, type XmlChild } from "../xml.ts";
import { type OpContext, quote, isoDate, header, owner, sendXml, empty, userMetadata, requireBucket, requireKey, versionHeader, intParam, withDigests, uploadBody, xmlBody, conditionsFrom, copySource, type Op, encodingType } from "./common.ts";

export const createMultipart: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const contentType = header(ctx.req, "content-type");
  const { uploadId } = await ctx.client.createMultipart(bucket, key, { ...(contentType ? { contentType } : {}), metadata: userMetadata(ctx.req) });
  sendXml(ctx.res, 200, xml("InitiateMultipartUploadResult", [["Bucket", bucket], ["Key", key], ["UploadId", uploadId]]));
};

function partParams(ctx: OpContext): { uploadId: string; partNumber: number } {
  const uploadId = ctx.route.query.get("uploadId");
  if (!uploadId) throw new ShoalError("InvalidArgument", "uploadId is required");
  const partNumber = intParam(ctx.route.query, "partNumber", 1, 10_000);
  if (partNumber === undefined) throw new ShoalError("InvalidArgument", "partNumber is required");
  return { uploadId, partNumber };
}

export const uploadPart: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const { uploadId, partNumber } = partParams(ctx);
  const { body, digests } = await uploadBody(ctx);
  const part = await withDigests(digests, (d) => ctx.client.uploadPart(bucket, key, uploadId, partNumber, body, d));
  ctx.res.setHeader("ETag", quote(part.etag));
  empty(ctx.res, 200);
};

export const uploadPartCopy: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const { uploadId, partNumber } = partParams(ctx);
  const src = copySource(ctx);
  const range = header(ctx.req, "x-amz-copy-source-range");
  if (range !== undefined && !/^bytes=\d+-\d+$/.test(range)) throw new ShoalError("InvalidArgument", "x-amz-copy-source-range must be bytes=first-last");
  const got = await ctx.client.get(src.bucket, src.key, { ...conditionsFrom(ctx.req, "x-amz-copy-source-if-"), ...(range ? { range } : {}) });
  const part = await ctx.client.uploadPart(bucket, key, uploadId, partNumber, got.body);
  sendXml(ctx.res, 200, xml("CopyPartResult", [["LastModified", isoDate(part.lastModified)], ["ETag", quote(part.etag)]]));
};

export const completeMultipart: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const uploadId = ctx.route.query.get("uploadId")!;
  const doc = await xmlBody(ctx);
  if (doc.name !== "CompleteMultipartUpload") throw new ShoalError("MalformedPayload", "expected a CompleteMultipartUpload document");
  const parts = childrenNamed(doc, "Part").map((p) => {
    const n = childText(p, "PartNumber");
    const etag = childText(p, "ETag");
    if (n === undefined || etag === undefined || !/^\d{1,5}$/.test(n.trim())) throw new ShoalError("MalformedPayload", "each Part needs a PartNumber and an ETag");
    return { partNumber: Number(n.trim()), etag: etag.trim() };
  });
  // Errors found quickly (InvalidPart, InvalidPartOrder, EntityTooSmall,
  // NoSuchUpload …) are ordinary error responses with their own status. A
  // completion still running after completeHoldMs commits to 200 and keeps
  // the connection alive with whitespace, as S3 does; a failure after that
  // is an <Error> document inside the 200, which the AWS SDKs (boto3 too)
  // detect and raise as that error.
  const res = ctx.res;
  const result = ctx.client.completeMultipart(bucket, key, uploadId, parts).then(
    (info) => ({ info }),
    (e: unknown) => ({ err: toShoalError(e) }),
  );
  let timer: NodeJS.Timeout | undefined;
  const early = await Promise.race([result, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ctx.completeHoldMs ?? 1000)))]);
  clearTimeout(timer);
  const body = (r: { info: ObjectMeta } | { err: ShoalError }) =>
    "info" in r
      ? xml("CompleteMultipartUploadResult", [["Location", `/${bucket}/${awsEncode(key, true)}`], ["Bucket", bucket], ["Key", key], ["ETag", quote(r.info.etag)]])
      : xml("Error", [["Code", r.err.spec.s3], ["Message", r.err.message], ["Resource", `/${bucket}/${key}`], ["RequestId", ctx.requestId]], "");
  if (early) {
    if ("err" in early) throw early.err;
    versionHeader(res, early.info.versionId);
    return sendXml(res, 200, body(early));
  }
  res.statusCode = 200;
  res.setHeader("Content-Type", "application/xml");
  res.write('<?xml version="1.0" encoding="UTF-8"?>\n');
  const keepAlive = setInterval(() => res.write(" "), 5000);
  try {
    const r = await result;
    if ("err" in r) ctx.log.debug({ code: r.err.code, requestId: ctx.requestId }, "multipart completion failed after the 200 was sent");
    res.end(body(r).replace(/^<\?xml[^>]*>\n/, ""));
  } finally {
    clearInterval(keepAlive);
  }
};

export const abortMultipart: Op = async (ctx) => {
  await ctx.client.abortMultipart(requireBucket(ctx.route), requireKey(ctx.route), ctx.route.query.get("uploadId")!);
  empty(ctx.res, 204);
};

export const listParts: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const q = ctx.route.query;
  const uploadId = q.get("uploadId")!;
  const maxParts = intParam(q, "max-parts", 0, 1000, true) ?? 1000;
  const marker = intParam(q, "part-number-marker", 0, 10_000) ?? 0;
  const r = await ctx.client.listParts(bucket, key, uploadId, { partNumberMarker: marker, maxParts });
  sendXml(ctx.res, 200, xml("ListPartsResult", [
    ["Bucket", bucket],
    ["Key", key],
    ["UploadId", uploadId],
    ["Initiator", owner(ctx)],
    ["Owner", owner(ctx)],
    ["StorageClass", "STANDARD"],
    ["PartNumberMarker", marker],
    ...(r.nextPartNumberMarker !== undefined ? ([["NextPartNumberMarker", r.nextPartNumberMarker]] as XmlChild[]) : []),
    ["MaxParts", maxParts],
    ["IsTruncated", r.isTruncated],
    ...r.parts.map((p): XmlChild => ["Part", [["PartNumber", p.partNumber], ["LastModified", isoDate(p.lastModified)], ["ETag", quote(p.etag)], ["Size", p.size]]]),
  ]));
};

export const listUploads: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const q = ctx.route.query;
  const enc = encodingType(q);
  const e = (s: string | undefined) => (s === undefined ? undefined : enc ? enc(s) : s);
  const maxUploads = intParam(q, "max-uploads", 0, 1000, true) ?? 1000;
  const opts = {
    maxUploads,
    ...(q.get("prefix") ? { prefix: q.get("prefix")! } : {}),
    ...(q.get("delimiter") ? { delimiter: q.get("delimiter")! } : {}),
    ...(q.get("key-marker") ? { keyMarker: q.get("key-marker")! } : {}),
    ...(q.get("upload-id-marker") ? { uploadIdMarker: q.get("upload-id-marker")! } : {}),
  };
  const r = await ctx.client.listMultipartUploads(bucket, opts);
  sendXml(ctx.res, 200, xml("ListMultipartUploadsResult", [
    ["Bucket", bucket],
    ["KeyMarker", e(q.get("key-marker") ?? "")],
    ["UploadIdMarker", q.get("upload-id-marker") ?? ""],
    ...(r.nextKeyMarker !== undefined ? ([["NextKeyMarker", e(r.nextKeyMarker)], ["NextUploadIdMarker", r.nextUploadIdMarker]] as XmlChild[]) : []),
    ["Prefix", e(q.get("prefix") ?? "")],
    ...(q.get("delimiter") ? ([["Delimiter", e(q.get("delimiter"))]] as XmlChild[]) : []),
    ["MaxUploads", maxUploads],
    ["IsTruncated", r.isTruncated],
    ...(enc ? ([["EncodingType", "url"]] as XmlChild[]) : []),
    ...r.uploads.map((u): XmlChild => ["Upload", [["Key", e(u.key)], ["UploadId", u.uploadId], ["Initiator", owner(ctx)], ["Owner", owner(ctx)], ["StorageClass", "STANDARD"], ["Initiated", isoDate(u.initiated)]]]),
    ...r.commonPrefixes.map((p): XmlChild => ["CommonPrefixes", [["Prefix", e(p)]]]),
  ]));
};

// --- bucket sub-resources: CORS, lifecycle, versioning -------------------------------

/**
 * Get, Put and Delete of a bucket sub-resource kept as one setting in KV
 * shoal_bucket_settings (CORS, lifecycle): the same three shapes, told apart
 * by the setting, its XML codec and the error for "none set".
 */
