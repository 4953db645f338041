/** Bucket operations: list, create, delete, head, location, and object listings (v1 and v2). */
import { ShoalError } from "../../errors/index.ts";
import { tokenAfterPrefix } from "../../client/index.ts";
import { childText, parseXml, xml, type XmlChild } from "../xml.ts";
import { quote, isoDate, header, owner, sendXml, empty, requireBucket, bodyOf, collect, type Op, listingParams } from "./common.ts";

export const listBuckets: Op = async (ctx) => {
  const buckets = await ctx.client.listBuckets();
  sendXml(ctx.res, 200, xml("ListAllMyBucketsResult", [
    ["Owner", owner(ctx)],
    ["Buckets", buckets.map((b): XmlChild => ["Bucket", [["Name", b.name], ["CreationDate", isoDate(b.created)]]])],
  ]));
};

export const createBucket: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const rh = header(ctx.req, "x-shoal-replicas");
  const replicas = rh === undefined ? undefined : Number(rh);
  if (replicas !== undefined && replicas !== 1 && replicas !== 3 && replicas !== 5) throw new ShoalError("InvalidReplicas", "x-shoal-replicas must be 1, 3 or 5");
  const { source, length } = bodyOf(ctx);
  const text = (await collect(source, 64 * 1024)).toString("utf8");
  if (text.trim() !== "" || (length ?? 0) > 0) {
    const doc = parseXml(text);
    if (doc.name !== "CreateBucketConfiguration") throw new ShoalError("MalformedPayload", "expected CreateBucketConfiguration");
    const loc = childText(doc, "LocationConstraint") ?? "";
    if (loc !== "" && loc !== ctx.config.region) throw new ShoalError("InvalidArgument", `the location constraint ${JSON.stringify(loc)} is not this gateway's region ${ctx.config.region}`);
  }
  try {
    await ctx.client.createBucket(bucket, replicas ? { replicas } : {});
    // best effort: a bucket without a recorded owner counts as everyone's (below)
    await ctx.settings.put(bucket, "owner", ctx.verified.accessKey).catch((e: unknown) => ctx.log.warn({ err: e, bucket }, "bucket owner not recorded"));
  } catch (e) {
    if (!(e instanceof ShoalError && e.code === "BucketAlreadyExists")) throw e;
    // Buckets made before owners were recorded (or by the CLI / SDK) count as the caller's.
    const owner = await ctx.settings.get(bucket, "owner");
    if (owner !== undefined && owner !== ctx.verified.accessKey) throw new ShoalError("BucketOwnedByAnother", undefined, { cause: e, detail: { bucket } });
    // us-east-1 answers 200 to its owner and keeps the bucket as it is; other regions say so
    if (ctx.config.region !== "us-east-1") throw e;
  }
  ctx.res.setHeader("Location", `/${bucket}`);
  empty(ctx.res, 200);
};

export const deleteBucket: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  await ctx.client.deleteBucket(bucket);
  await ctx.settings.forget(bucket).catch((e: unknown) => ctx.log.warn({ err: e, bucket }, "bucket settings not removed"));
  empty(ctx.res, 204);
};

export const headBucket: Op = async (ctx) => {
  await ctx.client.bucketInfo(requireBucket(ctx.route));
  ctx.res.setHeader("x-amz-bucket-region", ctx.config.region);
  empty(ctx.res, 200);
};

export const getBucketLocation: Op = async (ctx) => {
  await ctx.client.bucketInfo(requireBucket(ctx.route));
  const region = ctx.config.region === "us-east-1" ? "" : ctx.config.region;
  sendXml(ctx.res, 200, `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${region}</LocationConstraint>`);
};

export const listObjects = (v2: boolean): Op => async (ctx) => {
  const { bucket, q, enc, e, prefix, delimiter, maxKeys } = listingParams(ctx);
  const marker = v2 ? undefined : q.get("marker");
  const startAfter = v2 ? q.get("start-after") : undefined;
  // An empty continuation-token is no token (S3 echoes it back as given)
  const token = v2 ? q.get("continuation-token") : undefined;
  const after = marker || startAfter;
  // A v1 marker that is a common prefix skips everything under it (as S3 does).
  const continuationToken = token || (after && delimiter && after.endsWith(delimiter) && after.startsWith(prefix) ? tokenAfterPrefix(after) : undefined);
  // max-keys=0: an empty page that is not truncated (S3), once the bucket is known to exist
  const page =
    maxKeys === 0
      ? await ctx.client.bucketInfo(bucket).then(() => ({ contents: [], commonPrefixes: [], isTruncated: false, keyCount: 0, nextContinuationToken: undefined }))
      : await ctx.client.listPage(bucket, {
          prefix,
          maxKeys,
          ...(delimiter ? { delimiter } : {}),
          ...(continuationToken ? { continuationToken } : after ? { startAfter: after } : {}),
        });
  const fetchOwner = !v2 || q.get("fetch-owner") === "true";
  const contents = page.contents.map((c): XmlChild => [
    "Contents",
    [
      ["Key", e(c.key)],
      ["LastModified", isoDate(c.mtime)],
      ["ETag", quote(c.etag)],
      ["Size", c.size],
      ["StorageClass", "STANDARD"],
      ...(fetchOwner ? ([["Owner", owner(ctx)]] as XmlChild[]) : []),
    ],
  ]);
  const prefixes = page.commonPrefixes.map((p): XmlChild => ["CommonPrefixes", [["Prefix", e(p)]]]);
  // v1: NextMarker is the last key or common prefix returned
  const lastKey = page.contents[page.contents.length - 1]?.key;
  const lastCp = page.commonPrefixes[page.commonPrefixes.length - 1];
  const nextMarker = lastCp !== undefined && (lastKey === undefined || lastCp > lastKey) ? lastCp : lastKey;
  const head: XmlChild[] = v2
    ? [
        ["Name", bucket],
        ["Prefix", e(prefix)],
        ...(token !== undefined ? ([["ContinuationToken", token]] as XmlChild[]) : []),
        ...(page.isTruncated && page.nextContinuationToken ? ([["NextContinuationToken", page.nextContinuationToken]] as XmlChild[]) : []),
        ...(startAfter !== undefined ? ([["StartAfter", e(startAfter)]] as XmlChild[]) : []),
        ["KeyCount", page.keyCount],
        ["MaxKeys", maxKeys],
        ...(delimiter ? ([["Delimiter", e(delimiter)]] as XmlChild[]) : []),
        ["IsTruncated", page.isTruncated],
      ]
    : [
        ["Name", bucket],
        ["Prefix", e(prefix)],
        ["Marker", e(marker ?? "")],
        ...(page.isTruncated && nextMarker !== undefined ? ([["NextMarker", e(nextMarker)]] as XmlChild[]) : []),
        ["MaxKeys", maxKeys],
        ...(delimiter ? ([["Delimiter", e(delimiter)]] as XmlChild[]) : []),
        ["IsTruncated", page.isTruncated],
      ];
  sendXml(ctx.res, 200, xml("ListBucketResult", [...head, ...(enc ? ([["EncodingType", "url"]] as XmlChild[]) : []), ...contents, ...prefixes]));
};
