/**
 * The one table of Shoal error codes.
 *
 * Each code maps to the S3 error code and HTTP status the gateway answers
 * with, and to the NATS service error code (the `Nats-Service-Error-Code`
 * header) the storage service answers with. Every code here is documented in
 * docs/errors.md; a unit test fails when one is missing.
 */
export interface ErrorSpec {
  /** S3 error code used in the gateway's XML error body. */
  readonly s3: string;
  /** HTTP status used by the gateway. */
  readonly http: number;
  /** NATS service error code (`Nats-Service-Error-Code`). */
  readonly nats: number;
  /** Default, client-safe message. */
  readonly message: string;
  /** Whether an idempotent call that failed with this code may be retried. */
  readonly retryable: boolean;
}

export const ERRORS = {
  // --- client mistakes: names and input -------------------------------------
  InvalidBucketName: { s3: "InvalidBucketName", http: 400, nats: 400, retryable: false, message: "The specified bucket name is not valid." },
  InvalidKey: { s3: "KeyTooLongError", http: 400, nats: 400, retryable: false, message: "The specified object key is not valid." },
  InvalidArgument: { s3: "InvalidArgument", http: 400, nats: 400, retryable: false, message: "Invalid argument." },
  InvalidRequest: { s3: "InvalidRequest", http: 400, nats: 400, retryable: false, message: "The request is malformed." },
  MalformedPayload: { s3: "MalformedXML", http: 400, nats: 400, retryable: false, message: "The request payload is malformed or does not match the schema." },
  UnsupportedVersion: { s3: "InvalidRequest", http: 400, nats: 400, retryable: false, message: "The payload version is not supported." },
  RequestHeaderTooLarge: { s3: "RequestHeaderSectionTooLarge", http: 400, nats: 413, retryable: false, message: "The request headers exceed the maximum allowed size." },
  EntityTooLarge: { s3: "EntityTooLarge", http: 400, nats: 413, retryable: false, message: "The proposed upload exceeds the maximum allowed size." },
  EntityTooSmall: { s3: "EntityTooSmall", http: 400, nats: 400, retryable: false, message: "The proposed upload is smaller than the minimum allowed object size." },
  InvalidRange: { s3: "InvalidRange", http: 416, nats: 416, retryable: false, message: "The requested range is not satisfiable." },
  InvalidDirectUpload: { s3: "InvalidRequest", http: 400, nats: 400, retryable: false, message: "The chunks of a direct upload do not match what its commit claims." },
  BadDigest: { s3: "BadDigest", http: 400, nats: 400, retryable: false, message: "The Content-MD5 or checksum you specified did not match what was received." },
  InvalidReplicas: { s3: "InvalidArgument", http: 400, nats: 400, retryable: false, message: "Replicas must be 1, 3 or 5." },
  InvalidConfig: { s3: "InvalidArgument", http: 400, nats: 400, retryable: false, message: "The configuration is not valid." },

  // --- client mistakes: state -----------------------------------------------
  NoSuchBucket: { s3: "NoSuchBucket", http: 404, nats: 404, retryable: false, message: "The specified bucket does not exist." },
  NoSuchKey: { s3: "NoSuchKey", http: 404, nats: 404, retryable: false, message: "The specified key does not exist." },
  NoSuchVersion: { s3: "NoSuchVersion", http: 404, nats: 404, retryable: false, message: "The specified version does not exist." },
  MethodNotAllowed: { s3: "MethodNotAllowed", http: 405, nats: 405, retryable: false, message: "The specified method is not allowed against this resource." },
  InvalidPart: { s3: "InvalidPart", http: 400, nats: 400, retryable: false, message: "One or more of the specified parts could not be found, or its ETag did not match." },
  InvalidPartOrder: { s3: "InvalidPartOrder", http: 400, nats: 400, retryable: false, message: "The list of parts was not in ascending order." },
  NoSuchUpload: { s3: "NoSuchUpload", http: 404, nats: 404, retryable: false, message: "The specified multipart upload does not exist." },
  NoSuchCORSConfiguration: { s3: "NoSuchCORSConfiguration", http: 404, nats: 404, retryable: false, message: "The CORS configuration does not exist." },
  NoSuchLifecycleConfiguration: { s3: "NoSuchLifecycleConfiguration", http: 404, nats: 404, retryable: false, message: "The lifecycle configuration does not exist." },
  CorsForbidden: { s3: "AccessForbidden", http: 403, nats: 403, retryable: false, message: "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec." },
  NoSuchServer: { s3: "InvalidArgument", http: 404, nats: 404, retryable: false, message: "No NATS server of that name is known to the cluster." },
  BucketAlreadyExists: { s3: "BucketAlreadyOwnedByYou", http: 409, nats: 409, retryable: false, message: "The requested bucket name already exists." },
  BucketOwnedByAnother: { s3: "BucketAlreadyExists", http: 409, nats: 409, retryable: false, message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again." },
  BucketNotEmpty: { s3: "BucketNotEmpty", http: 409, nats: 409, retryable: false, message: "The bucket you tried to delete is not empty." },
  PreconditionFailed: { s3: "PreconditionFailed", http: 412, nats: 412, retryable: false, message: "At least one of the preconditions you specified did not hold." },
  NotModified: { s3: "NotModified", http: 304, nats: 304, retryable: false, message: "Not modified." },
  Aborted: { s3: "IncompleteBody", http: 400, nats: 499, retryable: false, message: "The request was aborted before it completed." },
  Conflict: { s3: "OperationAborted", http: 409, nats: 409, retryable: true, message: "A conflicting operation is in progress; retry." },

  // --- auth (gateway) -------------------------------------------------------
  AccessDenied: { s3: "AccessDenied", http: 403, nats: 403, retryable: false, message: "Access Denied." },
  SignatureDoesNotMatch: { s3: "SignatureDoesNotMatch", http: 403, nats: 403, retryable: false, message: "The request signature we calculated does not match the signature you provided." },
  RequestTimeTooSkewed: { s3: "RequestTimeTooSkewed", http: 403, nats: 403, retryable: false, message: "The difference between the request time and the server's time is too large." },

  InvalidAccessKeyId: { s3: "InvalidAccessKeyId", http: 403, nats: 403, retryable: false, message: "The AWS access key Id you provided does not exist in our records." },
  AuthorizationHeaderMalformed: { s3: "AuthorizationHeaderMalformed", http: 400, nats: 400, retryable: false, message: "The authorization header is malformed." },
  AuthorizationQueryParametersError: { s3: "AuthorizationQueryParametersError", http: 400, nats: 400, retryable: false, message: "The presigned URL's authorization parameters are malformed." },
  ContentSha256Mismatch: { s3: "XAmzContentSHA256Mismatch", http: 400, nats: 400, retryable: false, message: "The provided 'x-amz-content-sha256' header does not match what was computed." },
  IncompleteBody: { s3: "IncompleteBody", http: 400, nats: 400, retryable: false, message: "You did not provide the number of bytes specified by the Content-Length HTTP header." },
  InvalidDigest: { s3: "InvalidDigest", http: 400, nats: 400, retryable: false, message: "The Content-MD5 or checksum you specified is not valid." },
  MissingContentLength: { s3: "MissingContentLength", http: 411, nats: 411, retryable: false, message: "You must provide the Content-Length HTTP header." },

  // --- web console sessions ------------------------------------------------
  NotAuthenticated: { s3: "AccessDenied", http: 401, nats: 401, retryable: false, message: "Not logged in, or the session expired." },
  CsrfTokenInvalid: { s3: "AccessDenied", http: 403, nats: 403, retryable: false, message: "The request's CSRF token is missing or wrong." },

  // --- operations not offered -----------------------------------------------
  NotImplemented: { s3: "NotImplemented", http: 501, nats: 501, retryable: false, message: "A header or operation you provided implies functionality that is not implemented." },

  // --- server side ----------------------------------------------------------
  ServiceUnavailable: { s3: "ServiceUnavailable", http: 503, nats: 503, retryable: true, message: "The service is unavailable; retry." },
  SlowDown: { s3: "SlowDown", http: 503, nats: 503, retryable: true, message: "Please reduce your request rate." },
  Timeout: { s3: "RequestTimeout", http: 503, nats: 504, retryable: true, message: "The operation did not complete in time; retry." },
  InsufficientStorage: { s3: "InsufficientStorage", http: 507, nats: 507, retryable: true, message: "There is no room for this write: JetStream's storage limit is reached. Delete objects, or retry once replaced versions have been reclaimed." },
  ShuttingDown: { s3: "ServiceUnavailable", http: 503, nats: 503, retryable: true, message: "The actor is shutting down; retry on another instance." },
  NatsServerMissing: { s3: "InternalError", http: 500, nats: 500, retryable: false, message: "nats-server was not found." },
  NatsServerTooOld: { s3: "InternalError", http: 500, nats: 500, retryable: false, message: "The nats-server is older than the oldest version Shoal runs on." },
  InternalError: { s3: "InternalError", http: 500, nats: 500, retryable: false, message: "We encountered an internal error. Please try again." },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === "string" && Object.hasOwn(ERRORS, x);
}
