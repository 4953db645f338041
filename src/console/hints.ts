/**
 * What the console tells a user to do about an error: the error's own
 * message says what happened, the hint says what to do. Codes come from the
 * one table (src/errors/table.ts); codes without a hint get the generic one
 * for their HTTP class.
 */
import type { ErrorCode } from "../errors/index.ts";

const HINTS: Partial<Record<ErrorCode, string>> = {
  NotAuthenticated: "Log in again with your access key and secret key.",
  CsrfTokenInvalid: "Reload the page and try again.",
  AccessDenied: "Check the access key and secret key (shoal dev prints them when it starts).",
  InvalidBucketName: "Use 3–63 characters of a–z, 0–9, '.' and '-', starting and ending with a letter or digit.",
  InvalidKey: "Object names are 1–1024 bytes of UTF-8; pick a shorter name.",
  InvalidReplicas: "Choose 1, 3 or 5 replicas (3 and 5 need a cluster of at least that many servers).",
  InvalidArgument: "Correct the highlighted value and try again.",
  BucketAlreadyExists: "Pick another name, or open the existing bucket.",
  BucketNotEmpty: "Type the bucket's name to confirm deleting it with everything in it, or delete its objects first.",
  NoSuchBucket: "It may have been deleted meanwhile: go back to the bucket list.",
  NoSuchKey: "It may have been deleted meanwhile: refresh the listing.",
  NoSuchUpload: "The upload was cancelled or expired: start it again.",
  EntityTooLarge: "The file is larger than the largest object allowed: split it, or raise gateway.maxPutBytes.",
  EntityTooSmall: "A part other than the last is under 5 MiB: upload again (the console sizes parts itself).",
  InvalidPart: "A part went missing: start the upload again.",
  Aborted: "The upload was cut off: start it again.",
  PreconditionFailed: "Someone changed it meanwhile: refresh and try again.",
  ServiceUnavailable: "Shoal is busy or a server is down: wait a moment and retry, and check the Cluster page.",
  SlowDown: "Too many requests at once: wait a moment and retry.",
  Timeout: "Shoal did not answer in time: retry, and check the Cluster page if it keeps happening.",
  ShuttingDown: "A server is restarting: retry in a moment.",
  InternalError: "Retry; if it keeps happening, look at the gateway's log for the request id.",
};

export function hintFor(code: ErrorCode, status: number): string {
  return HINTS[code] ?? (status >= 500 ? "Retry in a moment; if it keeps happening, check the Cluster page." : "Correct the request and try again.");
}
