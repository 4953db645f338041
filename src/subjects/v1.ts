/**
 * The v1 codec: every request payload and header set of the object API
 * (docs/api.md), encoded by the SDK and decoded by the storage actor with
 * the same functions, and the ONE validator each for bucket names, object
 * keys, user metadata, content types and conditions.
 *
 * Every encoder builds its payload and then runs the matching decoder over
 * it, so the SDK refuses exactly what the actor would refuse, with the same
 * typed error, before anything is sent. Decoders never trust their input:
 * anything that does not match gets MalformedPayload (or a more specific
 * code) and nothing is touched.
 */
import { ShoalError } from "../errors/index.ts";
import { H, keyFromHeaders as keyFromHeaderValues, keyHeader } from "./headers.ts";
import { field, onlyFields } from "./payload.ts";

type Get = (name: string) => string | undefined;

/** C0 controls and DEL: never in a header value, metadata or content type. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** An HTTP token (RFC 9110): what a metadata name may be. */
const TOKEN_CHARS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** JSON.stringify, cut: for quoting a client's input in an error message. */
const quote = (s: unknown, max = 64) => JSON.stringify(typeof s === "string" ? s.slice(0, max) : String(s).slice(0, max));

// --- bucket names ---------------------------------------------------------------------

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * S3 bucket naming rules (general purpose buckets): 3–63 characters of
 * lowercase letters, digits, `.` and `-`; begins and ends with a letter or
 * digit; no `..`; not an IP address; not starting with `xn--`, `sthree-`
 * or `amzn-s3-demo-`; not ending with `-s3alias`, `--ol-s3` or `.mrap`.
 * No valid name holds `_`: that is what makes the bucket token injective.
 */
export function bucketNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return "must be a string";
  if (name.length < 3 || name.length > 63) return "must be between 3 and 63 characters long";
  if (!BUCKET.test(name)) return "may hold only lowercase letters, digits, '.' and '-', and must begin and end with a letter or digit";
  if (name.includes("..")) return "must not contain two adjacent periods";
  if (name.includes(".-") || name.includes("-.")) return "must not contain '.-' or '-.'";
  if (IPV4.test(name)) return "must not be formatted as an IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return "must not start with a reserved prefix";
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(name)) return "must not end with a reserved suffix";
  return undefined;
}

export function assertBucketName(name: unknown): string {
  const problem = bucketNameProblem(name);
  if (problem) throw new ShoalError("InvalidBucketName", `Invalid bucket name ${quote(name, 80)}: ${problem}.`, { detail: { bucket: String(name).slice(0, 80) } });
  return name as string;
}

// --- object keys ------------------------------------------------------------------------

export const MAX_KEY_BYTES = 1024;

/**
 * Object keys: 1–1024 bytes of UTF-8 (S3's rule). Tab, LF and CR are
 * allowed, as in S3 (they travel base64-encoded in the PUT header, see
 * keyHeader in ./headers.ts, and XML-escaped in listings). Shoal refuses the
 * other control characters (C0, DEL) — XML 1.0 cannot carry them, not even
 * as character references — and lone surrogates (not UTF-8).
 */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "must be a string";
  if (key.length === 0) return "must not be empty";
  if (!key.isWellFormed()) return "must be valid UTF-8 (no lone surrogates)";
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} bytes of UTF-8`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(key)) return "must not contain control characters other than tab, LF and CR";
  return undefined;
}

export function assertKey(key: unknown): string {
  const problem = keyProblem(key);
  if (problem) throw new ShoalError("InvalidKey", `Invalid object key ${quote(key)}: ${problem}.`);
  return key as string;
}

/** The headers naming `key` on a put or part (validated): `Shoal-Key`, or `Shoal-Key-B64` when a header cannot carry it as is (./headers.ts). */
export function keyHeaders(key: string): Record<string, string> {
  return keyHeader(assertKey(key));
}

/** The key named by `Shoal-Key` or `Shoal-Key-B64`, validated. */
export function keyFromHeaders(get: Get): string {
  const key = keyFromHeaderValues(get);
  if (key === undefined && get(H.keyB64) !== undefined) throw new ShoalError("InvalidKey", `${H.keyB64} is not the base64 of valid UTF-8`);
  return assertKey(key);
}

// --- user metadata and content type -----------------------------------------------------

/** Most user metadata, as S3 allows (2 KiB of names and values). */
export const MAX_USER_META_BYTES = 2048;
export const MAX_CONTENT_TYPE = 256;

/**
 * The one validator of user metadata (S3 x-amz-meta-*): names are HTTP
 * tokens, lower-cased; values are well-formed text without control
 * characters, their surrounding whitespace dropped (as HTTP and NATS headers
 * drop it); names and values together at most 2 KiB. What passes is
 * returned on every HEAD/GET unchanged.
 */
export function userMetadata(entries: Iterable<readonly [string, unknown]>): Record<string, string> {
  const md: Record<string, string> = Object.create(null) as Record<string, string>;
  let bytes = 0;
  for (const [rawName, rawValue] of entries) {
    if (typeof rawValue !== "string") throw new ShoalError("InvalidArgument", `metadata ${quote(rawName)} must be a string`);
    if (!rawName || !TOKEN_CHARS.test(rawName)) throw new ShoalError("InvalidArgument", `invalid metadata name ${quote(rawName)}`);
    const value = rawValue.trim();
    if (CONTROL.test(value)) throw new ShoalError("InvalidArgument", `metadata ${quote(rawName)} holds control characters`);
    if (!value.isWellFormed()) throw new ShoalError("InvalidArgument", `metadata ${quote(rawName)} is not valid UTF-8`);
    bytes += Buffer.byteLength(rawName) + Buffer.byteLength(value);
    if (bytes > MAX_USER_META_BYTES) throw new ShoalError("RequestHeaderTooLarge", `user metadata exceeds ${MAX_USER_META_BYTES} bytes`);
    md[rawName.toLowerCase()] = value;
  }
  return { ...md };
}

/** User metadata from a JSON field (`{"name": "value"}`). */
export function userMetadataField(o: Record<string, unknown>, name: string): Record<string, string> {
  const md = o[name];
  if (md === undefined || md === null) return {};
  if (typeof md !== "object" || Array.isArray(md)) throw new ShoalError("MalformedPayload", `field "${name}" must be an object of strings`);
  return userMetadata(Object.entries(md));
}

/** User metadata from `Shoal-Meta-<name>` headers. */
export function userMetadataFromHeaders(get: Get, names: Iterable<string>): Record<string, string> {
  const entries: Array<[string, string]> = [];
  for (const n of names) {
    if (n.toLowerCase().startsWith(H.metaPrefix.toLowerCase())) entries.push([n.slice(H.metaPrefix.length), get(n) ?? ""]);
  }
  return userMetadata(entries);
}

/** `Shoal-Meta-<name>` headers for user metadata (validated). */
export function metadataHeaders(md: Record<string, string> | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(userMetadata(Object.entries(md ?? {})))) h[`${H.metaPrefix}${k}`] = v;
  return h;
}

export function assertContentType(ct: unknown, name = "Content-Type"): string | undefined {
  if (ct === undefined || ct === null) return undefined;
  // a media type is visible ASCII (RFC 9110): what every HTTP and NATS header carries unchanged
  if (typeof ct !== "string" || ct.length > MAX_CONTENT_TYPE || !/^[\x20-\x7e]*$/.test(ct)) {
    throw new ShoalError("InvalidArgument", `invalid ${name}: at most ${MAX_CONTENT_TYPE} characters of visible ASCII`);
  }
  return ct.trim() || undefined;
}

// --- conditions ----------------------------------------------------------------------------

export interface Conditions {
  ifMatch?: string | undefined;
  ifNoneMatch?: string | undefined;
  ifModifiedSince?: string | undefined;
  ifUnmodifiedSince?: string | undefined;
}

/** What a caller may give: dates as Date or HTTP-date strings. */
export interface ConditionsInput {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string | Date;
  ifUnmodifiedSince?: string | Date;
}

export const CONDITION_FIELDS = ["ifMatch", "ifNoneMatch", "ifModifiedSince", "ifUnmodifiedSince"] as const;
const MAX_CONDITION = 1024;

function etagCondition(o: Record<string, unknown>, name: string): string | undefined {
  const v = field.optString(o, name);
  if (v !== undefined && (v.length > MAX_CONDITION || CONTROL.test(v))) throw new ShoalError("InvalidArgument", `${name} must be at most ${MAX_CONDITION} characters without control characters`);
  return v;
}

function dateCondition(o: Record<string, unknown>, name: string): string | undefined {
  const v = field.optString(o, name);
  if (v !== undefined && (v.length > 64 || CONTROL.test(v) || Number.isNaN(Date.parse(v)))) throw new ShoalError("InvalidArgument", `${name} is not a date`);
  return v;
}

/** The one validator of conditions (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since). */
export function decodeConditions(o: Record<string, unknown>): Conditions {
  return {
    ifMatch: etagCondition(o, "ifMatch"),
    ifNoneMatch: etagCondition(o, "ifNoneMatch"),
    ifModifiedSince: dateCondition(o, "ifModifiedSince"),
    ifUnmodifiedSince: dateCondition(o, "ifUnmodifiedSince"),
  };
}

export function encodeConditions(c: ConditionsInput): Record<string, string> {
  const o: Record<string, string> = {};
  const date = (d: string | Date) => (d instanceof Date ? d.toUTCString() : d);
  if (c.ifMatch !== undefined) o["ifMatch"] = c.ifMatch;
  if (c.ifNoneMatch !== undefined) o["ifNoneMatch"] = c.ifNoneMatch;
  if (c.ifModifiedSince !== undefined) o["ifModifiedSince"] = date(c.ifModifiedSince);
  if (c.ifUnmodifiedSince !== undefined) o["ifUnmodifiedSince"] = date(c.ifUnmodifiedSince);
  decodeConditions(o);
  return o;
}

// --- payloads -------------------------------------------------------------------------------

/** A JSON payload: `{"v":1,...}`, checked by `decode` before it is sent. */
function encoded<T>(o: Record<string, unknown>, decode: (o: Record<string, unknown>) => T): string {
  const body = { v: 1, ...o };
  decode(JSON.parse(JSON.stringify(body)) as Record<string, unknown>);
  return JSON.stringify(body);
}

const defined = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

export const MAX_DELETE_KEYS = 1000;
export const MAX_PART_NUMBER = 10_000;
export const MAX_LIST_KEYS = 1000;

export function assertPartNumber(n: unknown): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
    throw new ShoalError("InvalidArgument", `part numbers are integers from 1 to ${MAX_PART_NUMBER}`);
  }
  return n;
}

/** A subject a streamed body goes to (an inbox): no wildcards, no whitespace. */
function optSubject(o: Record<string, unknown>, name: string): string | undefined {
  const v = field.optString(o, name);
  if (v !== undefined && (v.length > 256 || !/^[^\s*>.]+(\.[^\s*>.]+)*$/.test(v))) throw new ShoalError("MalformedPayload", `${name} must be a subject`);
  return v;
}

// version ids (S3 versioning) ---------------------------------------------------------------

/** Whether `v` could be a version id Shoal issued: "null" (unversioned/suspended writes) or 1–64 of [0-9A-Za-z] (a nuid). */
export function isVersionId(v: string): boolean {
  return v === "null" || /^[0-9A-Za-z]{1,64}$/.test(v);
}

/** An optional version id field: InvalidArgument (as S3) for an id Shoal cannot have issued. */
export function optVersionId(o: Record<string, unknown>, name = "versionId"): { versionId?: string } {
  const v = field.optString(o, name);
  if (v === undefined) return {};
  if (!isVersionId(v)) throw new ShoalError("InvalidArgument", "Invalid version id specified");
  return { versionId: v };
}

// get ---------------------------------------------------------------------------------------

export interface GetRequest extends Conditions {
  key: string;
  range: string | undefined;
  /** Inbox to stream a large body to. */
  stream: string | undefined;
  window: number | undefined;
  /** The reader fetches the chunks itself when the body does not fit in the reply. */
  direct: boolean;
  /** Read this version instead of the current one. */
  versionId?: string;
}

export function decodeGet(o: Record<string, unknown>): GetRequest {
  onlyFields(o, ["key", "range", ...CONDITION_FIELDS, "stream", "window", "direct", "versionId"]);
  const range = field.optString(o, "range");
  if (range !== undefined && (range.length > 256 || CONTROL.test(range))) throw new ShoalError("InvalidArgument", "range must be an HTTP Range (bytes=a-b)");
  return {
    key: assertKey(field.string(o, "key")),
    range,
    ...decodeConditions(o),
    stream: optSubject(o, "stream"),
    window: field.optInt(o, "window", 64 * 1024, 64 * 1024 * 1024),
    direct: field.optBool(o, "direct") ?? false,
    ...optVersionId(o),
  };
}

export function encodeGet(r: { key: string; range?: string; stream?: string; window?: number; direct?: boolean; versionId?: string } & ConditionsInput): string {
  return encoded(defined({ key: r.key, ...encodeConditions(r), range: r.range, stream: r.stream, window: r.window, direct: r.direct || undefined, versionId: r.versionId }), decodeGet);
}

// head, delete --------------------------------------------------------------------------------

/** head and delete: the key, conditions (head) and an optional version id (docs/api.md). */
export function decodeKeyOnly(o: Record<string, unknown>): { key: string; versionId?: string } & Conditions {
  onlyFields(o, ["key", ...CONDITION_FIELDS, "versionId"]);
  return { key: assertKey(field.string(o, "key")), ...decodeConditions(o), ...optVersionId(o) };
}

export function encodeKeyOnly(key: string, c: ConditionsInput & { versionId?: string } = {}): string {
  return encoded(defined({ key, ...encodeConditions(c), versionId: c.versionId }), decodeKeyOnly);
}

// versions (ListObjectVersions) ----------------------------------------------------------------

export interface VersionListRequest {
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  keyMarker?: string;
  versionIdMarker?: string;
}

export function decodeVersionList(o: Record<string, unknown>): VersionListRequest {
  onlyFields(o, ["prefix", "delimiter", "maxKeys", "keyMarker", "versionIdMarker"]);
  const delimiter = optText(o, "delimiter");
  const keyMarker = optText(o, "keyMarker");
  const vim = field.optString(o, "versionIdMarker");
  if (vim !== undefined && vim !== "" && !isVersionId(vim)) throw new ShoalError("InvalidArgument", "Invalid version id specified");
  return {
    prefix: optText(o, "prefix") ?? "",
    ...(delimiter ? { delimiter } : {}),
    maxKeys: field.optInt(o, "maxKeys", 0, MAX_LIST_KEYS) ?? MAX_LIST_KEYS,
    ...(keyMarker !== undefined ? { keyMarker } : {}),
    ...(vim ? { versionIdMarker: vim } : {}),
  };
}

export function encodeVersionList(r: { prefix?: string; delimiter?: string; maxKeys?: number; keyMarker?: string; versionIdMarker?: string }): string {
  return encoded(defined({ prefix: r.prefix, delimiter: r.delimiter, maxKeys: r.maxKeys, keyMarker: r.keyMarker, versionIdMarker: r.versionIdMarker }), decodeVersionList);
}

// list -----------------------------------------------------------------------------------------

export interface ListRequest {
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  startAfter?: string;
  continuationToken?: string;
}

function optText(o: Record<string, unknown>, name: string, maxBytes = MAX_KEY_BYTES): string | undefined {
  const v = field.optString(o, name);
  if (v !== undefined && (!v.isWellFormed() || Buffer.byteLength(v) > maxBytes)) throw new ShoalError("InvalidArgument", `${name} must be valid UTF-8 of at most ${maxBytes} bytes`);
  return v;
}

export function decodeList(o: Record<string, unknown>): ListRequest {
  onlyFields(o, ["prefix", "delimiter", "maxKeys", "startAfter", "continuationToken"]);
  const delimiter = optText(o, "delimiter");
  const startAfter = optText(o, "startAfter");
  const continuationToken = optText(o, "continuationToken", 4096);
  return {
    prefix: optText(o, "prefix") ?? "",
    ...(delimiter ? { delimiter } : {}),
    maxKeys: field.optInt(o, "maxKeys", 0, 100_000) ?? MAX_LIST_KEYS,
    ...(startAfter !== undefined ? { startAfter } : {}),
    ...(continuationToken !== undefined ? { continuationToken } : {}),
  };
}

export function encodeList(r: { prefix?: string; delimiter?: string; maxKeys?: number; startAfter?: string; continuationToken?: string }): string {
  return encoded(defined({ prefix: r.prefix, delimiter: r.delimiter, maxKeys: r.maxKeys, startAfter: r.startAfter, continuationToken: r.continuationToken }), decodeList);
}

// deletemany ------------------------------------------------------------------------------------

/** The keys of a DeleteObjects: 1–1000 strings. Each key is validated on its own (a bad one is reported, not fatal). */
export function decodeDeleteMany(o: Record<string, unknown>): string[] {
  onlyFields(o, ["keys"]);
  const keys = field.optStringArray(o, "keys", MAX_DELETE_KEYS);
  if (!keys || keys.length === 0) throw new ShoalError("MalformedPayload", `keys must list 1 to ${MAX_DELETE_KEYS} keys`);
  return keys;
}

export function encodeDeleteMany(keys: readonly string[]): string {
  return encoded({ keys: [...keys] }, decodeDeleteMany);
}

// copy ----------------------------------------------------------------------------------------------

export interface CopyRequest extends Conditions {
  sourceBucket: string;
  sourceKey: string;
  key: string;
  /** COPY keeps the source's content type and metadata; REPLACE uses the ones given. */
  metadataDirective: "COPY" | "REPLACE";
  contentType: string | undefined;
  metadata: Record<string, string>;
  /** Copy this version of the source (the current one otherwise). */
  sourceVersionId?: string;
}

export function decodeCopy(o: Record<string, unknown>): CopyRequest {
  onlyFields(o, ["sourceBucket", "sourceKey", "key", "metadataDirective", "contentType", "metadata", ...CONDITION_FIELDS, "sourceVersionId"]);
  const directive = field.optString(o, "metadataDirective") ?? "COPY";
  if (directive !== "COPY" && directive !== "REPLACE") throw new ShoalError("InvalidArgument", "metadataDirective must be COPY or REPLACE");
  return {
    sourceBucket: assertBucketName(field.string(o, "sourceBucket")),
    sourceKey: assertKey(field.string(o, "sourceKey")),
    key: assertKey(field.string(o, "key")),
    metadataDirective: directive,
    contentType: assertContentType(field.optString(o, "contentType"), "contentType"),
    metadata: userMetadataField(o, "metadata"),
    ...decodeConditions(o),
    ...(optVersionId(o, "sourceVersionId").versionId !== undefined ? { sourceVersionId: optVersionId(o, "sourceVersionId").versionId! } : {}),
  };
}

export function encodeCopy(
  src: { bucket: string; key: string; versionId?: string },
  destKey: string,
  opts: ConditionsInput & { metadataDirective?: "COPY" | "REPLACE"; contentType?: string; metadata?: Record<string, string> },
): string {
  return encoded(
    defined({
      sourceBucket: src.bucket,
      sourceKey: src.key,
      sourceVersionId: src.versionId,
      key: destKey,
      ...encodeConditions(opts),
      metadataDirective: opts.metadataDirective,
      contentType: opts.contentType,
      metadata: opts.metadata,
    }),
    decodeCopy,
  );
}

// buckets ---------------------------------------------------------------------------------------------

export function decodeBucketCreate(o: Record<string, unknown>, defaultReplicas: number): { bucket: string; replicas: 1 | 3 | 5 } {
  onlyFields(o, ["bucket", "replicas"]);
  const bucket = assertBucketName(field.string(o, "bucket"));
  const r = o["replicas"] === undefined ? defaultReplicas : o["replicas"];
  if (r !== 1 && r !== 3 && r !== 5) throw new ShoalError("InvalidReplicas", `replicas must be 1, 3 or 5, got ${quote(JSON.stringify(r) ?? String(r))}`);
  return { bucket, replicas: r };
}

export function encodeBucketCreate(bucket: string, replicas?: 1 | 3 | 5): string {
  return encoded(defined({ bucket, replicas }), (o) => decodeBucketCreate(o, 1));
}

export function decodeBucketName(o: Record<string, unknown>, extra: string[] = []): { bucket: string; force: boolean } {
  onlyFields(o, ["bucket", ...extra]);
  return { bucket: assertBucketName(field.string(o, "bucket")), force: field.optBool(o, "force") ?? false };
}

export function encodeBucketName(bucket: string, force?: boolean): string {
  return encoded(defined({ bucket, force: force || undefined }), (o) => decodeBucketName(o, ["force"]));
}

/**
 * `{"v":1,"bucket"?,"pressure"?}` of the sweep control: a named bucket, or
 * all when absent; `pressure: true` (the health-monitor's, when JetStream
 * storage nears its limit) sweeps every bucket with the short
 * storage.pressureReadGraceMs — and not at all while such a sweep runs, or
 * shortly after one that found nothing to remove.
 */
export function decodeSweep(o: Record<string, unknown>): { bucket?: string; pressure?: boolean } {
  onlyFields(o, ["bucket", "pressure"]);
  const b = field.optString(o, "bucket");
  const pressure = field.optBool(o, "pressure") ?? false;
  if (pressure && b !== undefined) throw new ShoalError("InvalidArgument", "a pressure sweep covers every bucket: no \"bucket\" with it");
  return { ...(b === undefined ? {} : { bucket: assertBucketName(b) }), ...(pressure ? { pressure } : {}) };
}

// put and part headers ------------------------------------------------------------------------------------

/** How a body travels and what it must hash to: the headers a put and a part share. */
export interface BodyHeaders {
  /** Content-MD5, as hex. */
  md5Hex: string | undefined;
  /** Shoal-Sha256 (base64). */
  sha256B64: string | undefined;
  /** Streamed through the actor (Shoal-Stream: 1). */
  stream: boolean;
  /** Written by the caller itself (Shoal-Direct: 1). */
  direct: boolean;
}

export function decodeBodyHeaders(get: Get): BodyHeaders {
  const md5 = get(H.contentMd5);
  let md5Hex: string | undefined;
  if (md5 !== undefined) {
    const b = Buffer.from(md5, "base64");
    if (b.length !== 16 || b.toString("base64") !== md5.trim()) throw new ShoalError("InvalidArgument", "Content-MD5 must be the base64 of 16 bytes");
    md5Hex = b.toString("hex");
  }
  const sha = get(H.sha256);
  if (sha !== undefined) {
    const b = Buffer.from(sha, "base64");
    if (b.length !== 32 || b.toString("base64") !== sha.trim()) throw new ShoalError("InvalidArgument", "Shoal-Sha256 must be the base64 of 32 bytes");
  }
  const stream = get(H.stream) === "1";
  const direct = get(H.direct) === "1";
  if (stream && direct) throw new ShoalError("InvalidRequest", "a body streams through the actor (Shoal-Stream) or is written directly (Shoal-Direct), not both");
  return { md5Hex, sha256B64: sha, stream, direct };
}

export interface PutRequest extends BodyHeaders {
  key: string;
  contentType: string | undefined;
  userMeta: Record<string, string>;
  ifNoneMatch: boolean;
  ifMatch: string | undefined;
  /** What the ETag is (Shoal-Etag-Kind; default md5). */
  etagKind: EtagKind;
}

/** What an object's ETag is: the body's MD5 (S3's single PUT), or derived from its SHA-256 (no MD5 computed). */
export type EtagKind = "md5" | "sha256";

export function decodePut(get: Get, names: Iterable<string>): PutRequest {
  const key = keyFromHeaders(get);
  const userMeta = userMetadataFromHeaders(get, names);
  const inm = get(H.ifNoneMatch);
  if (inm !== undefined && inm.trim() !== "*") throw new ShoalError("NotImplemented", "If-None-Match on PUT supports only *");
  const ifMatch = etagCondition({ ifMatch: get(H.ifMatch) }, "ifMatch");
  const kind = get(H.etagKind);
  if (kind !== undefined && kind !== "md5" && kind !== "sha256") throw new ShoalError("InvalidArgument", `${H.etagKind} must be md5 or sha256, not ${quote(kind)}`);
  return { key, contentType: assertContentType(get(H.contentType)), userMeta, ifNoneMatch: inm !== undefined, ifMatch, etagKind: kind ?? "md5", ...decodeBodyHeaders(get) };
}

export interface PutInput {
  contentType?: string;
  metadata?: Record<string, string>;
  ifNoneMatch?: boolean;
  ifMatch?: string;
  /** Base64 MD5 of the body. */
  contentMd5?: string;
  /** Base64 SHA-256 of the body. */
  sha256?: string;
  /** What the ETag is (default md5). */
  etag?: EtagKind;
}

/** A NATS header value cannot hold CR or LF (the client throws): a typed error instead. */
function headerValuesOk(h: Record<string, string>): void {
  for (const [k, v] of Object.entries(h)) if (/[\r\n]/.test(v)) throw new ShoalError("InvalidArgument", `${k} cannot hold CR or LF`);
}

function digestHeaders(o: { contentMd5?: string; sha256?: string }): Record<string, string> {
  const h: Record<string, string> = {};
  if (o.contentMd5) h[H.contentMd5] = o.contentMd5;
  if (o.sha256) h[H.sha256] = o.sha256;
  return h;
}

/** The headers of a put (without the body mode: the SDK adds Shoal-Stream or Shoal-Direct), checked as the actor checks them. */
export function putHeaders(key: string, o: PutInput): Record<string, string> {
  const h: Record<string, string> = { ...keyHeaders(key), ...metadataHeaders(o.metadata), ...digestHeaders(o) };
  if (o.contentType) h[H.contentType] = o.contentType;
  if (o.ifNoneMatch) h[H.ifNoneMatch] = "*";
  if (o.ifMatch) h[H.ifMatch] = o.ifMatch;
  if (o.etag !== undefined && o.etag !== "md5") h[H.etagKind] = o.etag;
  headerValuesOk(h);
  decodePut((n) => h[n], Object.keys(h));
  return h;
}

export function decodeMpuPart(get: Get): { key: string; uploadId: string; partNumber: number } & BodyHeaders {
  const key = keyFromHeaders(get);
  const uploadId = get(H.uploadId);
  if (!uploadId) throw new ShoalError("InvalidArgument", `${H.uploadId} is required`);
  const raw = get(H.partNumber);
  const n = raw !== undefined && /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  const partNumber = assertPartNumber(n);
  return { key, uploadId: assertUploadId(uploadId), partNumber, ...decodeBodyHeaders(get) };
}

export function partHeaders(key: string, uploadId: string, partNumber: number, o: { contentMd5?: string; sha256?: string }): Record<string, string> {
  const h: Record<string, string> = { ...keyHeaders(key), [H.uploadId]: uploadId, [H.partNumber]: String(partNumber), ...digestHeaders(o) };
  headerValuesOk(h);
  decodeMpuPart((n) => h[n]);
  return h;
}

// multipart ---------------------------------------------------------------------------------------------

/** Upload ids are Shoal's own (nuids); anything else cannot name an upload. */
export function assertUploadId(id: unknown): string {
  if (typeof id !== "string" || !/^[A-Za-z0-9]{8,64}$/.test(id)) throw new ShoalError("NoSuchUpload", "the upload id is not one Shoal issued", { detail: { uploadId: String(id).slice(0, 80) } });
  return id;
}

export function decodeMpuCreate(o: Record<string, unknown>): { key: string; contentType: string | undefined; metadata: Record<string, string> } {
  onlyFields(o, ["key", "contentType", "metadata"]);
  return { key: assertKey(field.string(o, "key")), contentType: assertContentType(field.optString(o, "contentType"), "contentType"), metadata: userMetadataField(o, "metadata") };
}

export function encodeMpuCreate(key: string, o: { contentType?: string; metadata?: Record<string, string> }): string {
  return encoded(defined({ key, contentType: o.contentType, metadata: o.metadata }), decodeMpuCreate);
}

export function decodeMpuRef(o: Record<string, unknown>, extra: string[] = []): { key: string; uploadId: string } {
  onlyFields(o, ["key", "uploadId", ...extra]);
  return { key: assertKey(field.string(o, "key")), uploadId: assertUploadId(field.string(o, "uploadId")) };
}

export function encodeMpuRef(key: string, uploadId: string): string {
  return encoded({ key, uploadId }, (o) => decodeMpuRef(o));
}

export function decodeMpuComplete(o: Record<string, unknown>): { key: string; uploadId: string; parts: Array<{ n: number; etag: string }> } {
  const ref = decodeMpuRef(o, ["parts"]);
  const raw = o["parts"];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_PART_NUMBER) throw new ShoalError("MalformedPayload", `parts must list 1 to ${MAX_PART_NUMBER} parts`);
  const parts = raw.map((p: unknown) => {
    if (typeof p !== "object" || p === null || Array.isArray(p)) throw new ShoalError("MalformedPayload", "each part is {partNumber, etag}");
    const r = p as Record<string, unknown>;
    onlyFields(r, ["partNumber", "etag"]);
    const etag = field.string(r, "etag");
    if (etag.length > 128) throw new ShoalError("InvalidPart", "a part's etag is at most 128 characters");
    return { n: assertPartNumber(r["partNumber"]), etag };
  });
  return { ...ref, parts };
}

export function encodeMpuComplete(key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): string {
  return encoded({ key, uploadId, parts: parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })) }, decodeMpuComplete);
}

export function decodeMpuParts(o: Record<string, unknown>): { key: string; uploadId: string; partNumberMarker: number; maxParts: number } {
  const ref = decodeMpuRef(o, ["partNumberMarker", "maxParts"]);
  return { ...ref, partNumberMarker: field.optInt(o, "partNumberMarker", 0, MAX_PART_NUMBER) ?? 0, maxParts: field.optInt(o, "maxParts", 0, 1000) ?? 1000 };
}

export function encodeMpuParts(key: string, uploadId: string, o: { partNumberMarker?: number; maxParts?: number }): string {
  return encoded(defined({ key, uploadId, partNumberMarker: o.partNumberMarker, maxParts: o.maxParts }), decodeMpuParts);
}

export interface UploadListQuery {
  prefix: string;
  delimiter: string | undefined;
  keyMarker: string | undefined;
  uploadIdMarker: string | undefined;
  maxUploads: number;
}

export function decodeMpuList(o: Record<string, unknown>): UploadListQuery {
  onlyFields(o, ["prefix", "delimiter", "keyMarker", "uploadIdMarker", "maxUploads"]);
  const delimiter = optText(o, "delimiter");
  return {
    prefix: optText(o, "prefix") ?? "",
    delimiter: delimiter ? delimiter : undefined,
    keyMarker: optText(o, "keyMarker"),
    uploadIdMarker: optText(o, "uploadIdMarker", 128),
    maxUploads: field.optInt(o, "maxUploads", 0, 1000) ?? 1000,
  };
}

export function encodeMpuList(o: { prefix?: string; delimiter?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number }): string {
  return encoded(defined({ prefix: o.prefix, delimiter: o.delimiter, keyMarker: o.keyMarker, uploadIdMarker: o.uploadIdMarker, maxUploads: o.maxUploads }), decodeMpuList);
}

// direct-upload commit ----------------------------------------------------------------------------------------

/** The commit of a direct upload: what the writer says it wrote (checked against the stream before it counts). */
export interface DirectClaim {
  size: number;
  /** Hex MD5; "" when the upload's ETag is derived from its SHA-256 (Shoal-Etag-Kind: sha256) and none was computed. */
  md5: string;
  sha256: string;
  /** CRC-32, 8 hex digits (optional: writers before it send none, and the object is then checked by its SHA-256). */
  crc32?: string;
  /**
   * The chunks' sequences as the writer's acks gave them, as runs
   * (`first+count,…`; src/store/format.ts encodeRuns), sent when the offer
   * says `seqs: true`; without them the actor reads the chunks' headers back.
   */
  seqs?: string;
}

/** Runs of sequences (`first+count,…`): shape only; the count is checked against the claim's size by the store. */
const SEQ_RUNS = /^[1-9][0-9]{0,15}\+[1-9][0-9]{0,8}(,[1-9][0-9]{0,15}\+[1-9][0-9]{0,8})*$/;

export function decodeClaim(o: Record<string, unknown>): DirectClaim {
  onlyFields(o, ["size", "md5", "sha256", "crc32", "seqs"]);
  const size = field.optInt(o, "size");
  if (size === undefined) throw new ShoalError("MalformedPayload", 'field "size" is required');
  const md5 = o["md5"] === undefined ? "" : field.string(o, "md5").toLowerCase();
  const sha256 = field.string(o, "sha256");
  if (o["md5"] !== undefined && !/^[0-9a-f]{32}$/.test(md5)) throw new ShoalError("MalformedPayload", 'field "md5" must be 32 hex digits');
  if (!/^[A-Za-z0-9_-]{43}=$/.test(sha256)) throw new ShoalError("MalformedPayload", 'field "sha256" must be the padded base64url of 32 bytes');
  const crc32 = o["crc32"] === undefined ? undefined : field.string(o, "crc32").toLowerCase();
  if (crc32 !== undefined && !/^[0-9a-f]{8}$/.test(crc32)) throw new ShoalError("MalformedPayload", 'field "crc32" must be 8 hex digits');
  const seqs = o["seqs"] === undefined ? undefined : field.string(o, "seqs");
  if (seqs !== undefined && (seqs.length > 1_000_000 || (seqs !== "" && !SEQ_RUNS.test(seqs)))) throw new ShoalError("MalformedPayload", 'field "seqs" must be runs of sequences, "<first>+<count>,…"');
  return { size, md5, sha256, ...(crc32 !== undefined ? { crc32 } : {}), ...(seqs !== undefined ? { seqs } : {}) };
}

export function encodeClaim(c: DirectClaim): string {
  return encoded({ size: c.size, ...(c.md5 ? { md5: c.md5 } : {}), sha256: c.sha256, ...(c.crc32 !== undefined ? { crc32: c.crc32 } : {}), ...(c.seqs !== undefined ? { seqs: c.seqs } : {}) }, decodeClaim);
}

// replies ---------------------------------------------------------------------------------------------------

/** An object's description as the SDK returns it (HEAD, PUT and copy replies; GET reply headers). */
export interface ObjectMeta {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  sha256: string;
  /** CRC-32 of the whole object (8 hex digits), when Shoal recorded one (docs/api.md). */
  crc32?: string;
  contentType: string;
  mtime: string;
  revision: number;
  metadata: Record<string, string>;
  /** The version's id in a versioned (or suspended) bucket; absent otherwise. */
  versionId?: string;
}

/** An object's description from the headers of a GET/HEAD reply. */
export function metaFromReplyHeaders(bucket: string, key: string, get: Get, names: Iterable<string>): ObjectMeta {
  const g = (n: string) => get(n) ?? "";
  const metadata: Record<string, string> = {};
  for (const k of names) if (k.toLowerCase().startsWith(H.metaPrefix.toLowerCase())) metadata[k.slice(H.metaPrefix.length).toLowerCase()] = g(k);
  return {
    bucket,
    key,
    size: Number(g(H.objectSize)),
    etag: g(H.etag),
    sha256: g(H.sha256Reply),
    ...(/^[0-9a-f]{8}$/.test(g(H.crc32Reply)) ? { crc32: g(H.crc32Reply) } : {}),
    contentType: g(H.contentType),
    mtime: g(H.mtime),
    revision: Number(g(H.revision)),
    metadata,
    ...(get(H.versionId) ? { versionId: g(H.versionId) } : {}),
  };
}

// --- reply decoding (SDK) ----------------------------------------------------------------------------------

/**
 * The type of each field a reply must carry (`?` when it may be absent or
 * null). Fields not named are allowed: a newer service may add some.
 */
type FieldType = "string" | "number" | "boolean" | "object" | "array" | "string[]" | "string?" | "number?" | "boolean?" | "object?";
export type ReplyShape = Readonly<Record<string, FieldType>>;

function fieldOk(v: unknown, t: FieldType): boolean {
  const optional = t.endsWith("?");
  if (optional && (v === undefined || v === null)) return true;
  const base = optional ? t.slice(0, -1) : t;
  switch (base) {
    case "string":
      return typeof v === "string";
    case "number":
      return typeof v === "number" && Number.isFinite(v);
    case "boolean":
      return typeof v === "boolean";
    case "object":
      return typeof v === "object" && v !== null && !Array.isArray(v);
    case "array":
      return Array.isArray(v);
    case "string[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
  }
  return false;
}

/**
 * Checks a reply against its shape. A reply that does not match is the
 * service's fault, not the caller's: InternalError (as a malformed offer is).
 */
export function checkReply<T>(o: unknown, what: string, shape: ReplyShape): T {
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw new ShoalError("InternalError", `the ${what} reply is not a JSON object`);
  const r = o as Record<string, unknown>;
  if (r["v"] !== undefined && r["v"] !== PAYLOAD_V) throw new ShoalError("UnsupportedVersion", `the ${what} reply is version ${JSON.stringify(r["v"])}; this SDK speaks v${PAYLOAD_V}`);
  for (const [name, t] of Object.entries(shape)) {
    if (!fieldOk(r[name], t)) throw new ShoalError("InternalError", `the ${what} reply's field "${name}" is not a ${t}`);
  }
  return o as T;
}
const PAYLOAD_V = 1;

const OBJECT_INFO: ReplyShape = { bucket: "string", key: "string", size: "number", etag: "string", sha256: "string", crc32: "string?", contentType: "string", mtime: "string", revision: "number", metadata: "object", versionId: "string?" };

/** An object's description in a put, copy, HEAD or multipart-complete reply. */
export function decodeObjectInfoReply(o: unknown): ObjectMeta {
  const m = checkReply<ObjectMeta>(o, "object", OBJECT_INFO);
  if (!Object.values(m.metadata).every((v) => typeof v === "string")) throw new ShoalError("InternalError", 'the object reply\'s "metadata" is not an object of strings');
  if (m.crc32 !== undefined && !/^[0-9a-f]{8}$/.test(m.crc32)) throw new ShoalError("InternalError", 'the object reply\'s "crc32" is not 8 hex digits');
  return m;
}

/** The reply's JSON for an object (what decodeObjectInfoReply reads). */
export function objectInfoReply(bucket: string, info: { key: string; size: number; etag: string; sha256: string; crc32?: string; contentType: string; mtime: string; revision: number; userMeta: Record<string, string>; versionId?: string }): Record<string, unknown> {
  return { v: 1, bucket, key: info.key, size: info.size, etag: info.etag, sha256: info.sha256, ...(info.crc32 !== undefined ? { crc32: info.crc32 } : {}), contentType: info.contentType, mtime: info.mtime, revision: info.revision, metadata: info.userMeta, ...(info.versionId !== undefined ? { versionId: info.versionId } : {}) };
}

export const REPLY = {
  list: { contents: "array", commonPrefixes: "string[]", isTruncated: "boolean", keyCount: "number", nextContinuationToken: "string?" },
  listEntry: { key: "string", size: "number", etag: "string", mtime: "string", revision: "number" },
  deleted: { deleted: "boolean" },
  deleteMany: { deleted: "string[]", errors: "array" },
  bucket: { name: "string", replicas: "number", created: "string" },
  bucketDeleted: { deleted: "boolean" },
  bucketList: { buckets: "array" },
  uploadCreated: { uploadId: "string" },
  part: { partNumber: "number", etag: "string", size: "number", lastModified: "string" },
  parts: { bucket: "string", key: "string", uploadId: "string", parts: "array", isTruncated: "boolean" },
  uploads: { bucket: "string", prefix: "string", uploads: "array", commonPrefixes: "string[]", isTruncated: "boolean" },
  aborted: { aborted: "boolean" },
  streamAccept: { subject: "string", window: "number" },
  versions: { versions: "array", commonPrefixes: "string[]", isTruncated: "boolean", nextKeyMarker: "string?", nextVersionIdMarker: "string?" },
  versionEntry: { key: "string", versionId: "string", isLatest: "boolean", deleteMarker: "boolean", mtime: "string", size: "number", etag: "string" },
} as const satisfies Record<string, ReplyShape>;

/** A list page, each entry checked. */
export function decodeListReply<T>(o: unknown): T {
  const page = checkReply<{ contents: unknown[] }>(o, "list", REPLY.list);
  for (const e of page.contents) checkReply(e, "list entry", REPLY.listEntry);
  return page as T;
}

/** A ListObjectVersions page, each entry checked. */
export function decodeVersionsReply<T>(o: unknown): T {
  const page = checkReply<{ versions: unknown[] }>(o, "versions", REPLY.versions);
  for (const e of page.versions) checkReply(e, "version entry", REPLY.versionEntry);
  return page as T;
}

/** A bucket list, each bucket checked. */
export function decodeBucketListReply<T>(o: unknown): T {
  const r = checkReply<{ buckets: unknown[] }>(o, "bucket list", REPLY.bucketList);
  for (const b of r.buckets) checkReply(b, "bucket", REPLY.bucket);
  return r as T;
}
