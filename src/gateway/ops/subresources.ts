/** Bucket sub-resources: CORS (and the preflight it answers), lifecycle, versioning and the version listing. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ShoalError, type ErrorCode } from "../../errors/index.ts";
import { childText, xml, type XmlChild, type XmlElement } from "../xml.ts";
import type { BucketSettings, SettingValues } from "../../store/bucketsettings.ts";
import { corsFromXml, corsHeaders, corsMatch, corsToXml, lifecycleFromXml, lifecycleToXml } from "../bucketxml.ts";
import { quote, isoDate, header, owner, sendXml, empty, requireBucket, checkVersionId, xmlBody, type Op, listingParams } from "./common.ts";

function settingOps<K extends "cors" | "lifecycle">(kind: K, toXml: (v: SettingValues[K]) => string, fromXml: (doc: XmlElement) => SettingValues[K], none: ErrorCode) {
  const get: Op = async (ctx) => {
    const bucket = requireBucket(ctx.route);
    await ctx.client.bucketInfo(bucket);
    const value = await ctx.settings.get(bucket, kind);
    if (!value) throw new ShoalError(none);
    sendXml(ctx.res, 200, toXml(value));
  };
  const put: Op = async (ctx) => {
    const bucket = requireBucket(ctx.route);
    const value = fromXml(await xmlBody(ctx));
    await ctx.client.bucketInfo(bucket);
    await ctx.settings.put(bucket, kind, value);
    empty(ctx.res, 200);
  };
  const del: Op = async (ctx) => {
    const bucket = requireBucket(ctx.route);
    await ctx.client.bucketInfo(bucket);
    await ctx.settings.delete(bucket, kind);
    empty(ctx.res, 204);
  };
  return { get, put, del };
}

export const cors = settingOps("cors", corsToXml, corsFromXml, "NoSuchCORSConfiguration");
export const lifecycle = settingOps("lifecycle", lifecycleToXml, lifecycleFromXml, "NoSuchLifecycleConfiguration");

/** GetBucketVersioning: Status Enabled or Suspended; an empty configuration for a bucket never versioned (as S3). */
export const getBucketVersioning: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  await ctx.client.bucketInfo(bucket);
  const state = await ctx.settings.get(bucket, "versioning");
  sendXml(ctx.res, 200, xml("VersioningConfiguration", state ? [["Status", state]] : []));
};

/**
 * PutBucketVersioning: Enabled or Suspended, kept in KV
 * shoal_bucket_settings (`<bucket>.versioning`), which the storage service
 * reads for every write. A bucket once versioned cannot become unversioned
 * (S3): only Suspended. Suspended on a bucket never versioned changes
 * nothing (it is not recorded). MFA Delete is refused.
 */
export const putBucketVersioning: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const doc = await xmlBody(ctx);
  if (doc.name !== "VersioningConfiguration") throw new ShoalError("MalformedPayload", "expected a VersioningConfiguration document");
  const status = childText(doc, "Status")?.trim();
  const mfa = childText(doc, "MfaDelete")?.trim();
  if (mfa === "Enabled") throw new ShoalError("NotImplemented", "MFA Delete is not supported");
  await ctx.client.bucketInfo(bucket);
  if (status === undefined) return empty(ctx.res, 200);
  if (status !== "Enabled" && status !== "Suspended") throw new ShoalError("MalformedPayload", "Status must be Enabled or Suspended");
  const now = await ctx.settings.get(bucket, "versioning");
  if (status === "Suspended" && now === undefined) return empty(ctx.res, 200);
  if (now !== status) await ctx.settings.put(bucket, "versioning", status);
  empty(ctx.res, 200);
};

/**
 * ListObjectVersions: every version and delete marker, keys in order and
 * each key's versions newest first, paged by key-marker/version-id-marker
 * (src/store/versions.ts pageVersions).
 */
export const listObjectVersions: Op = async (ctx) => {
  const { bucket, q, enc, e, prefix, delimiter, maxKeys } = listingParams(ctx);
  const keyMarker = q.get("key-marker") || undefined;
  const vim = q.get("version-id-marker") || undefined;
  if (vim !== undefined && keyMarker === undefined) throw new ShoalError("InvalidArgument", "A version-id marker cannot be specified without a key marker.");
  checkVersionId(vim);
  const page =
    maxKeys === 0
      ? await ctx.client.bucketInfo(bucket).then(() => ({ versions: [], commonPrefixes: [], isTruncated: false, nextKeyMarker: undefined, nextVersionIdMarker: undefined }))
      : await ctx.client.listVersions(bucket, { prefix, maxKeys, ...(delimiter ? { delimiter } : {}), ...(keyMarker ? { keyMarker } : {}), ...(vim ? { versionIdMarker: vim } : {}) });
  sendXml(ctx.res, 200, xml("ListVersionsResult", [
    ["Name", bucket],
    ["Prefix", e(prefix)],
    ["KeyMarker", e(keyMarker ?? "")],
    ["VersionIdMarker", vim ?? ""],
    ...(page.isTruncated && page.nextKeyMarker !== undefined ? ([["NextKeyMarker", e(page.nextKeyMarker)]] as XmlChild[]) : []),
    ...(page.isTruncated && page.nextVersionIdMarker !== undefined ? ([["NextVersionIdMarker", page.nextVersionIdMarker]] as XmlChild[]) : []),
    ["MaxKeys", maxKeys],
    ...(delimiter ? ([["Delimiter", e(delimiter)]] as XmlChild[]) : []),
    ["IsTruncated", page.isTruncated],
    ...(enc ? ([["EncodingType", "url"]] as XmlChild[]) : []),
    ...page.versions.map((v): XmlChild =>
      v.deleteMarker
        ? ["DeleteMarker", [["Key", e(v.key)], ["VersionId", v.versionId], ["IsLatest", v.isLatest], ["LastModified", isoDate(v.mtime)], ["Owner", owner(ctx)]]]
        : ["Version", [["Key", e(v.key)], ["VersionId", v.versionId], ["IsLatest", v.isLatest], ["LastModified", isoDate(v.mtime)], ["ETag", quote(v.etag)], ["Size", v.size], ["StorageClass", "STANDARD"], ["Owner", owner(ctx)]]],
    ),
    ...page.commonPrefixes.map((p): XmlChild => ["CommonPrefixes", [["Prefix", e(p)]]]),
  ]));
};

/**
 * A browser's CORS preflight (OPTIONS, unauthenticated): answered from the
 * bucket's CORS rules; 403 when none allows the origin, method and headers.
 */
export const preflight: Op = async (ctx) => {
  const bucket = requireBucket(ctx.route);
  const origin = header(ctx.req, "origin");
  const method = header(ctx.req, "access-control-request-method");
  if (!origin || !method) throw new ShoalError("InvalidRequest", "a CORS preflight needs the Origin and Access-Control-Request-Method headers");
  const wanted = (header(ctx.req, "access-control-request-headers") ?? "").split(",").map((h) => h.trim().toLowerCase()).filter(Boolean);
  const rules = await ctx.settings.cached(bucket, "cors");
  const rule = rules ? corsMatch(rules, origin, method, wanted) : undefined;
  if (!rule) throw new ShoalError("CorsForbidden");
  for (const [k, v] of Object.entries(corsHeaders(rule, origin, { method, headers: wanted }))) ctx.res.setHeader(k, v);
  empty(ctx.res, 200);
};

/** CORS headers for an actual (non-preflight) request with an Origin, when a rule of the bucket allows it. */
export async function applyCors(ctx: { req: IncomingMessage; res: ServerResponse; settings: BucketSettings }, bucket: string): Promise<void> {
  const origin = header(ctx.req, "origin");
  if (!origin) return;
  const rules = await ctx.settings.cached(bucket, "cors").catch(() => undefined);
  const rule = rules ? corsMatch(rules, origin, ctx.req.method ?? "GET") : undefined;
  if (rule) for (const [k, v] of Object.entries(corsHeaders(rule, origin, undefined))) ctx.res.setHeader(k, v);
}
