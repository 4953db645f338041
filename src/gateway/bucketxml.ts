/**
 * Bucket sub-resources as S3 XML, both ways, and the CORS decision. Pure;
 * unit-tested (test/unit/gateway-bucketxml.test.ts).
 *
 * - CORSConfiguration ⇄ CorsRule[] (PutBucketCors / GetBucketCors) and
 *   `corsMatch`: which rule, if any, answers a request from an origin.
 * - LifecycleConfiguration ⇄ LifecycleRule[]: Expiration (Days or Date),
 *   NoncurrentVersionExpiration, AbortIncompleteMultipartUpload, with a
 *   prefix (Filter/Prefix, Filter/And/Prefix or the legacy Rule/Prefix).
 *   Transitions and tag filters are refused with NotImplemented: Shoal has
 *   one storage class and no tags.
 */
import { ShoalError } from "../errors/index.ts";
import type { CorsRule, LifecycleRule } from "../store/bucketsettings.ts";
import { childText, childrenNamed, xml, type XmlChild, type XmlElement } from "./xml.ts";

const bad = (why: string) => new ShoalError("MalformedPayload", why);
const METHODS = new Set(["GET", "PUT", "POST", "DELETE", "HEAD"]);

export function corsFromXml(doc: XmlElement): CorsRule[] {
  if (doc.name !== "CORSConfiguration") throw bad("expected a CORSConfiguration document");
  const rules = childrenNamed(doc, "CORSRule").map((r): CorsRule => {
    const texts = (n: string) => childrenNamed(r, n).map((c) => c.text.trim());
    const origins = texts("AllowedOrigin");
    const methods = texts("AllowedMethod");
    if (origins.length === 0 || methods.length === 0) throw bad("each CORSRule needs an AllowedOrigin and an AllowedMethod");
    for (const m of methods) if (!METHODS.has(m)) throw new ShoalError("InvalidRequest", `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`);
    for (const o of origins) if ((o.match(/\*/g) ?? []).length > 1) throw new ShoalError("InvalidRequest", `AllowedOrigin "${o}" can not have more than one wildcard.`);
    const age = childText(r, "MaxAgeSeconds");
    if (age !== undefined && !/^\d{1,9}$/.test(age.trim())) throw bad("MaxAgeSeconds must be a whole number");
    const id = childText(r, "ID");
    return {
      ...(id !== undefined ? { id: id.trim() } : {}),
      allowedOrigins: origins,
      allowedMethods: methods,
      allowedHeaders: texts("AllowedHeader"),
      exposeHeaders: texts("ExposeHeader"),
      ...(age !== undefined ? { maxAgeSeconds: Number(age.trim()) } : {}),
    };
  });
  if (rules.length === 0 || rules.length > 100) throw bad("a CORSConfiguration holds 1 to 100 rules");
  return rules;
}

export function corsToXml(rules: CorsRule[]): string {
  return xml("CORSConfiguration", rules.map((r): XmlChild => [
    "CORSRule",
    [
      ...(r.id !== undefined ? ([["ID", r.id]] as XmlChild[]) : []),
      ...r.allowedHeaders.map((h): XmlChild => ["AllowedHeader", h]),
      ...r.allowedMethods.map((m): XmlChild => ["AllowedMethod", m]),
      ...r.allowedOrigins.map((o): XmlChild => ["AllowedOrigin", o]),
      ...r.exposeHeaders.map((h): XmlChild => ["ExposeHeader", h]),
      ...(r.maxAgeSeconds !== undefined ? ([["MaxAgeSeconds", r.maxAgeSeconds]] as XmlChild[]) : []),
    ],
  ]));
}

/** `*` in a pattern matches any run of characters (S3 allows one per AllowedOrigin / AllowedHeader). */
function wildcard(pattern: string, value: string, caseless: boolean): boolean {
  const p = caseless ? pattern.toLowerCase() : pattern;
  const v = caseless ? value.toLowerCase() : value;
  const i = p.indexOf("*");
  if (i < 0) return p === v;
  const head = p.slice(0, i);
  const tail = p.slice(i + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

/**
 * The first rule that allows `origin` to use `method` with `headers` (the
 * preflight's Access-Control-Request-Headers), as S3 evaluates them.
 */
export function corsMatch(rules: readonly CorsRule[], origin: string, method: string, headers: readonly string[] = []): CorsRule | undefined {
  return rules.find(
    (r) =>
      r.allowedOrigins.some((o) => wildcard(o, origin, false)) &&
      r.allowedMethods.includes(method.toUpperCase()) &&
      headers.every((h) => r.allowedHeaders.some((a) => wildcard(a, h, true))),
  );
}

/** The response headers a matched rule grants. */
export function corsHeaders(rule: CorsRule, origin: string, preflight: { method: string; headers: readonly string[] } | undefined): Record<string, string> {
  const any = rule.allowedOrigins.includes("*");
  const h: Record<string, string> = {
    "Access-Control-Allow-Origin": any ? "*" : origin,
    "Access-Control-Allow-Methods": rule.allowedMethods.join(", "),
    Vary: "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
  };
  if (!any) h["Access-Control-Allow-Credentials"] = "true";
  if (rule.exposeHeaders.length) h["Access-Control-Expose-Headers"] = rule.exposeHeaders.join(", ");
  if (preflight) {
    if (preflight.headers.length) h["Access-Control-Allow-Headers"] = preflight.headers.join(", ");
    if (rule.maxAgeSeconds !== undefined) h["Access-Control-Max-Age"] = String(rule.maxAgeSeconds);
  }
  return h;
}

// --- lifecycle ----------------------------------------------------------------------

function days(el: XmlElement | undefined, name: string): number | undefined {
  const t = el ? childText(el, name) : undefined;
  if (t === undefined) return undefined;
  if (!/^\d{1,6}$/.test(t.trim()) || Number(t.trim()) < 1) throw new ShoalError("InvalidArgument", `${name} must be a positive whole number of days`);
  return Number(t.trim());
}

export function lifecycleFromXml(doc: XmlElement): LifecycleRule[] {
  if (doc.name !== "LifecycleConfiguration") throw bad("expected a LifecycleConfiguration document");
  const ids = new Set<string>();
  const rules = childrenNamed(doc, "Rule").map((r): LifecycleRule => {
    const status = childText(r, "Status")?.trim();
    if (status !== "Enabled" && status !== "Disabled") throw bad("each Rule needs a Status of Enabled or Disabled");
    if (childrenNamed(r, "Transition").length || childrenNamed(r, "NoncurrentVersionTransition").length) throw new ShoalError("NotImplemented", "lifecycle transitions are not supported: Shoal has one storage class");
    const filter = childrenNamed(r, "Filter")[0];
    const and = filter ? childrenNamed(filter, "And")[0] : undefined;
    if (filter && (childrenNamed(filter, "Tag").length || (and && childrenNamed(and, "Tag").length))) throw new ShoalError("NotImplemented", "lifecycle filters on tags are not supported");
    if (filter && (childText(filter, "ObjectSizeGreaterThan") ?? childText(filter, "ObjectSizeLessThan")) !== undefined) throw new ShoalError("NotImplemented", "lifecycle filters on object size are not supported");
    const legacy = childText(r, "Prefix");
    const prefix = (and ? childText(and, "Prefix") : filter ? childText(filter, "Prefix") : legacy) ?? "";
    if (filter && legacy !== undefined) throw bad("a Rule has either a Filter or a Prefix");
    const exp = childrenNamed(r, "Expiration")[0];
    const date = exp ? childText(exp, "Date")?.trim() : undefined;
    if (date !== undefined && (Number.isNaN(Date.parse(date)) || new Date(date).getUTCHours() !== 0 || new Date(date).getUTCMinutes() !== 0)) throw new ShoalError("InvalidArgument", "Expiration Date must be midnight UTC (ISO 8601)");
    const expirationDays = days(exp, "Days");
    if (exp && childText(exp, "ExpiredObjectDeleteMarker") !== undefined && expirationDays === undefined && date === undefined) {
      // ExpiredObjectDeleteMarker alone: accepted as S3 accepts it, not applied (docs/s3.md)
    } else if (exp && (expirationDays === undefined) === (date === undefined)) throw bad("Expiration needs exactly one of Days or Date");
    const noncurrentDays = days(childrenNamed(r, "NoncurrentVersionExpiration")[0], "NoncurrentDays");
    const abortIncompleteDays = days(childrenNamed(r, "AbortIncompleteMultipartUpload")[0], "DaysAfterInitiation");
    if (expirationDays === undefined && date === undefined && noncurrentDays === undefined && abortIncompleteDays === undefined && !exp) {
      throw bad("a Rule needs an Expiration, NoncurrentVersionExpiration or AbortIncompleteMultipartUpload");
    }
    const id = childText(r, "ID")?.trim();
    if (id !== undefined) {
      if (id.length > 255) throw new ShoalError("InvalidArgument", "a rule ID is at most 255 characters");
      if (ids.has(id)) throw new ShoalError("InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule");
      ids.add(id);
    }
    return {
      ...(id !== undefined ? { id } : {}),
      enabled: status === "Enabled",
      prefix,
      ...(expirationDays !== undefined ? { expirationDays } : {}),
      ...(date !== undefined ? { expirationDate: new Date(date).toISOString() } : {}),
      ...(noncurrentDays !== undefined ? { noncurrentDays } : {}),
      ...(abortIncompleteDays !== undefined ? { abortIncompleteDays } : {}),
    };
  });
  if (rules.length === 0 || rules.length > 1000) throw bad("a LifecycleConfiguration holds 1 to 1000 rules");
  return rules;
}

export function lifecycleToXml(rules: LifecycleRule[]): string {
  return xml("LifecycleConfiguration", rules.map((r): XmlChild => [
    "Rule",
    [
      ...(r.id !== undefined ? ([["ID", r.id]] as XmlChild[]) : []),
      ["Filter", [["Prefix", r.prefix]]],
      ["Status", r.enabled ? "Enabled" : "Disabled"],
      ...(r.expirationDays !== undefined ? ([["Expiration", [["Days", r.expirationDays]]]] as XmlChild[]) : []),
      ...(r.expirationDate !== undefined ? ([["Expiration", [["Date", r.expirationDate.replace(/\.\d{3}Z$/, "Z")]]]] as XmlChild[]) : []),
      ...(r.noncurrentDays !== undefined ? ([["NoncurrentVersionExpiration", [["NoncurrentDays", r.noncurrentDays]]]] as XmlChild[]) : []),
      ...(r.abortIncompleteDays !== undefined ? ([["AbortIncompleteMultipartUpload", [["DaysAfterInitiation", r.abortIncompleteDays]]]] as XmlChild[]) : []),
    ],
  ]));
}
