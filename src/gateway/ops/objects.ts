/** Object operations: PUT, copy, GET/HEAD (streamed to the response with back-pressure), DELETE and multi-object delete. */
import type { ServerResponse } from "node:http";
import { ShoalError, toShoalError } from "../../errors/index.ts";
import type { ObjectMeta } from "../../client/index.ts";
import { childText, childrenNamed, xml, type XmlChild } from "../xml.ts";
import { type OpContext, quote, isoDate, httpDate, header, sendXml, empty, userMetadata, requireBucket, requireKey, checkVersionId, versionOf, versionHeader, intParam, withDigests, uploadBody, xmlBody, objectHeaders, partRange, conditionsFrom, OVERRIDES, copySource, type Op } from "./common.ts";

export const putObject: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const inm = header(ctx.req, "if-none-match");
  const im = header(ctx.req, "if-match");
  const contentType = header(ctx.req, "content-type");
  if (inm !== undefined && inm.trim() !== "*") throw new ShoalError("NotImplemented", "If-None-Match on PUT supports only *");
  const { body, digests } = await uploadBody(ctx);
  const info = await withDigests(digests, (d) =>
    ctx.client.put(bucket, key, body, {
      ...(contentType ? { contentType } : {}),
      metadata: userMetadata(ctx.req),
      ...(inm !== undefined ? { ifNoneMatch: true } : {}),
      ...(im !== undefined ? { ifMatch: im } : {}),
      ...d,
    }),
  );
  ctx.res.setHeader("ETag", quote(info.etag));
  versionHeader(ctx.res, info.versionId);
  empty(ctx.res, 200);
};

export const copyObject: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const src = copySource(ctx);
  const directive = (header(ctx.req, "x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") throw new ShoalError("InvalidArgument", "x-amz-metadata-directive must be COPY or REPLACE");
  if (directive === "COPY" && src.bucket === bucket && src.key === key && src.versionId === undefined) {
    throw new ShoalError("InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.");
  }
  const contentType = header(ctx.req, "content-type");
  const info = await ctx.client.copy(src, { bucket, key }, {
    ...conditionsFrom(ctx.req, "x-amz-copy-source-if-"),
    metadataDirective: directive,
    ...(directive === "REPLACE" ? { metadata: userMetadata(ctx.req), ...(contentType ? { contentType } : {}) } : {}),
  });
  versionHeader(ctx.res, info.versionId);
  const sourceVersionId = (info as ObjectMeta & { sourceVersionId?: string }).sourceVersionId;
  if (sourceVersionId !== undefined) ctx.res.setHeader("x-amz-copy-source-version-id", sourceVersionId);
  sendXml(ctx.res, 200, xml("CopyObjectResult", [["LastModified", isoDate(info.mtime)], ["ETag", quote(info.etag)]]));
};

export const getObject = (headOnly: boolean): Op => async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const key = requireKey(ctx.route);
  const q = ctx.route.query;
  const partNumber = intParam(q, "partNumber", 1, 10_000);
  let range = header(ctx.req, "range");
  if (partNumber !== undefined && range !== undefined) throw new ShoalError("InvalidRequest", "Cannot specify both Range header and partNumber query parameter");
  const cond = { ...conditionsFrom(ctx.req), ...versionOf(ctx.route) };
  const res = ctx.res;
  try {
    let meta: ObjectMeta | undefined;
    let part: { range?: string; count?: number } | undefined;
    if (partNumber !== undefined) {
      meta = await ctx.client.head(bucket, key, cond);
      part = partRange(meta, partNumber);
      range = part.range;
      if (part.count !== undefined) res.setHeader("x-amz-mp-parts-count", part.count);
    }
    if (headOnly) {
      const m = meta ?? (await ctx.client.head(bucket, key, cond));
      objectHeaders(res, m);
      for (const [p, h] of OVERRIDES) if (q.has(p)) res.setHeader(h, q.get(p)!);
      const r = part?.range ? /^bytes=(\d+)-(\d+)$/.exec(part.range) : null;
      if (!r) checksumHeaders(ctx, m);
      if (r) {
        res.setHeader("Content-Length", Number(r[2]) - Number(r[1]) + 1);
        res.setHeader("Content-Range", `bytes ${r[1]}-${r[2]}/${m.size}`);
        return empty(res, 206);
      }
      res.setHeader("Content-Length", m.size);
      return empty(res, 200);
    }
    return await sendObject(ctx, bucket, key, cond, range);
  } catch (e) {
    // S3's 304 carries the ETag (and Last-Modified) of what the client already has
    if (e instanceof ShoalError && e.code === "NotModified" && !res.headersSent) {
      const m = await ctx.client.head(bucket, key, versionOf(ctx.route)).catch(() => undefined);
      if (m) {
        res.setHeader("ETag", quote(m.etag));
        res.setHeader("Last-Modified", httpDate(m.mtime));
      }
    }
    throw e;
  }
};

/**
 * Streams a GET's body to the response: each piece is written once the next
 * one has come (no copy: the reader's chunk is handed to the socket), and
 * the next is pulled only once the response has drained — a slow client
 * holds the reader back instead of making the gateway buffer the object (at
 * most the reader's read-ahead plus two pieces per response). A client that
 * goes away stops the read (its in-flight requests are dropped).
 *
 * The last piece is held until the reader has ended without error: a whole
 * object's CRC-32 (or, without one, its SHA-256) is checked after its last chunk, and a mismatch (or any
 * late failure) must cut the response short of its Content-Length — were the
 * last piece already written, the client would have every byte it was
 * promised and take a corrupt body for a good one.
 */
async function sendObject(ctx: OpContext, bucket: string, key: string, cond: ReturnType<typeof conditionsFrom>, range: string | undefined): Promise<void> {
  const { res } = ctx;
  const q = ctx.route.query;
  const gone = new AbortController();
  const onClose = () => gone.abort(new ShoalError("Aborted", "the client went away"));
  res.once("close", onClose);
  try {
    const got = await ctx.client.get(bucket, key, { ...cond, ...(range ? { range } : {}), signal: gone.signal });
    objectHeaders(res, got.info);
    if (!got.contentRange) checksumHeaders(ctx, got.info);
    for (const [p, h] of OVERRIDES) if (q.has(p)) res.setHeader(h, q.get(p)!);
    res.setHeader("Content-Length", got.length);
    if (got.contentRange) res.setHeader("Content-Range", got.contentRange);
    res.statusCode = got.contentRange ? 206 : 200;
    try {
      let held: Uint8Array | undefined;
      for await (const piece of got.body) {
        if (gone.signal.aborted) break;
        if (held && !res.write(held)) await drained(res, gone.signal);
        held = piece;
      }
      if (!gone.signal.aborted) res.end(held);
    } catch (e) {
      // the client went away, or the read failed: either way the response is cut
      ctx.log.debug({ err: e, requestId: ctx.requestId }, "GET body ended early");
      res.destroy();
    }
  } finally {
    res.off("close", onClose);
  }
}

/**
 * S3's flexible checksums on a whole-object GET or HEAD: with
 * `x-amz-checksum-mode: ENABLED`, the object's CRC-32 as Shoal recorded it
 * (base64 of its 4 bytes, big-endian, as x-amz-checksum-crc32 is sent) and
 * `x-amz-checksum-type: FULL_OBJECT`. Objects without one (written by stock
 * tools, composed multipart objects before their copy) and ranges get none,
 * as S3 gives none for a range.
 */
function checksumHeaders(ctx: OpContext, m: ObjectMeta): void {
  if (m.crc32 === undefined || header(ctx.req, "x-amz-checksum-mode")?.toUpperCase() !== "ENABLED") return;
  ctx.res.setHeader("x-amz-checksum-crc32", Buffer.from(m.crc32, "hex").toString("base64"));
  ctx.res.setHeader("x-amz-checksum-type", "FULL_OBJECT");
}

/** Resolves once `res` has drained, or at once when the client has gone. */
function drained(res: ServerResponse, gone: AbortSignal): Promise<void> {
  if (gone.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      gone.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    gone.addEventListener("abort", done, { once: true });
  });
}

export const deleteObject: Op = async (ctx) => {
  const r = await ctx.client.delete(requireBucket(ctx.route), requireKey(ctx.route), versionOf(ctx.route));
  versionHeader(ctx.res, r.versionId);
  if (r.deleteMarker) ctx.res.setHeader("x-amz-delete-marker", "true");
  empty(ctx.res, 204);
};

export const deleteObjects: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const doc = await xmlBody(ctx);
  if (doc.name !== "Delete") throw new ShoalError("MalformedPayload", "expected a Delete document");
  const quiet = childText(doc, "Quiet") === "true";
  // Objects named with a VersionId are deleted one by one (DELETE ?versionId=); the others in one call
  const byVersion: XmlChild[] = [];
  const versioned: Array<{ key: string; versionId: string }> = [];
  const objects = childrenNamed(doc, "Object");
  if (objects.length === 0 || objects.length > 1000) throw new ShoalError("MalformedPayload", "Delete lists 1 to 1000 objects");
  const keys = objects.flatMap((o) => {
    const k = childText(o, "Key");
    if (k === undefined) throw new ShoalError("MalformedPayload", "each Object needs a Key");
    const v = childText(o, "VersionId");
    if (v !== undefined) {
      versioned.push({ key: k, versionId: v });
      return [];
    }
    return [k];
  });
  for (const { key: k, versionId } of versioned) {
    try {
      checkVersionId(versionId);
      const d = await ctx.client.delete(bucket, k, { versionId });
      if (!quiet) byVersion.push(["Deleted", [["Key", k], ["VersionId", versionId], ...(d.deleteMarker ? ([["DeleteMarker", true], ["DeleteMarkerVersionId", versionId]] as XmlChild[]) : [])]]);
    } catch (e) {
      const err = toShoalError(e);
      byVersion.push(["Error", [["Key", k], ["VersionId", versionId], ["Code", err.spec.s3], ["Message", err.message]]]);
    }
  }
  const r = keys.length ? await ctx.client.deleteMany(bucket, keys) : { deleted: [], errors: [] };
  sendXml(ctx.res, 200, xml("DeleteResult", [
    ...(quiet ? [] : r.deleted.map((k): XmlChild => ["Deleted", [["Key", k]]])),
    ...byVersion,
    ...r.errors.map((er): XmlChild => {
      let s3 = er.code;
      try {
        s3 = new ShoalError(er.code as never).spec.s3;
      } catch {
        // not one of ours
      }
      return ["Error", [["Key", er.key], ["Code", s3], ["Message", er.message]]];
    }),
  ]));
};
