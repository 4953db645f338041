/**
 * S3 naming rules for buckets and object keys. Every edge validates with
 * these before anything touches JetStream.
 */
import { ShoalError } from "../errors/index.ts";

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * S3 bucket naming rules (general purpose buckets): 3–63 characters of
 * lowercase letters, digits, `.` and `-`; begins and ends with a letter or
 * digit; no `..`; not an IP address; not starting with `xn--`, `sthree-`
 * or `amzn-s3-demo-`; not ending with `-s3alias`, `--ol-s3` or `.mrap`.
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
  if (problem) throw new ShoalError("InvalidBucketName", `Invalid bucket name ${JSON.stringify(String(name)).slice(0, 80)}: ${problem}.`, { detail: { bucket: String(name).slice(0, 80) } });
  return name as string;
}

export const MAX_KEY_BYTES = 1024;

/**
 * Object keys: 1–1024 bytes of UTF-8 (S3's rule). Shoal also refuses keys
 * with control characters (C0, DEL) or lone surrogates: they cannot round-trip
 * through HTTP headers, XML and subject-encoded metadata unambiguously.
 */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "must be a string";
  if (key.length === 0) return "must not be empty";
  if (!key.isWellFormed()) return "must be valid UTF-8 (no lone surrogates)";
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return `must be at most ${MAX_KEY_BYTES} bytes of UTF-8`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return "must not contain control characters";
  return undefined;
}

export function assertKey(key: unknown): string {
  const problem = keyProblem(key);
  if (problem) {
    const shown = typeof key === "string" ? key.slice(0, 64) : String(key);
    throw new ShoalError("InvalidKey", `Invalid object key ${JSON.stringify(shown)}: ${problem}.`);
  }
  return key as string;
}
