import { ERRORS, isErrorCode, type ErrorCode, type ErrorSpec } from "./table.ts";
import { isConnectionClosed, isJetStreamUnavailable, isNoResponders, isStorageFull, isTimeout } from "./nats.ts";

export { ERRORS, isErrorCode, type ErrorCode, type ErrorSpec };

/** Header carrying Shoal's own error code beside the standard NATS service headers. */
export const SHOAL_ERROR_HEADER = "Shoal-Error";
/** Standard NATS micro service error headers (ADR-32). */
export const NATS_SERVICE_ERROR_HEADER = "Nats-Service-Error";
export const NATS_SERVICE_ERROR_CODE_HEADER = "Nats-Service-Error-Code";

/**
 * The error class of Shoal. Everything that crosses an edge (NATS service
 * reply, S3 XML, CLI exit) is a ShoalError with a code from the table.
 */
export class ShoalError extends Error {
  override readonly name = "ShoalError";
  readonly code: ErrorCode;
  /** Extra, client-safe fields (bucket, key, resource, …). */
  readonly detail: Readonly<Record<string, string | number | boolean>> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; detail?: Record<string, string | number | boolean> },
  ) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options?.detail ? Object.freeze({ ...options.detail }) : undefined;
  }

  get spec(): ErrorSpec {
    return ERRORS[this.code];
  }

  get retryable(): boolean {
    return ERRORS[this.code].retryable;
  }

  toJSON(): { code: ErrorCode; message: string; detail?: Record<string, string | number | boolean> } {
    return this.detail ? { code: this.code, message: this.message, detail: { ...this.detail } } : { code: this.code, message: this.message };
  }
}

export function isShoalError(e: unknown, code?: ErrorCode): e is ShoalError {
  return e instanceof ShoalError && (code === undefined || e.code === code);
}

/**
 * Turns any thrown value into a ShoalError that is safe to show a client.
 * ShoalErrors pass through; NATS timeouts, no-responders, JetStream
 * unavailable and a closed connection become retryable 503s; JetStream's
 * storage reservation refused (10047) InsufficientStorage (507; a publish's
 * 10023 is mapped where it is known to answer a write, src/jet); anything else becomes InternalError with a generic message
 * (the original stays as `cause`, for the log only).
 */
export function toShoalError(e: unknown): ShoalError {
  if (e instanceof ShoalError) return e;
  // by the client's error classes and JetStream API codes (./nats.ts), never by message text
  if (isTimeout(e)) return new ShoalError("Timeout", undefined, { cause: e });
  if (isNoResponders(e) || isJetStreamUnavailable(e) || isConnectionClosed(e)) return new ShoalError("ServiceUnavailable", undefined, { cause: e });
  if (isStorageFull(e)) return new ShoalError("InsufficientStorage", undefined, { cause: e });
  return new ShoalError("InternalError", undefined, { cause: e });
}

/** Longest error text put into a header (`Nats-Service-Error`); the JSON body carries the same text. */
export const MAX_HEADER_TEXT = 256;

/**
 * Makes text safe for a NATS header value: control characters (CR, LF and
 * the rest of C0, DEL, C1) become `\uXXXX` escapes, and the result is cut to
 * `max` characters without splitting a surrogate pair. Error messages quote
 * what a client sent, and a header can carry neither CR nor LF.
 */
export function headerSafe(text: string, max = MAX_HEADER_TEXT): string {
  // eslint-disable-next-line no-control-regex
  let s = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (s.length > max) s = `${s.slice(0, max - 1)}…`;
  return s.toWellFormed();
}

/** Wire form of an error: headers for a NATS reply, plus a JSON body. */
export interface WireError {
  headers: Record<string, string>;
  body: string;
}

export function errorToWire(err: ShoalError): WireError {
  return {
    headers: {
      [NATS_SERVICE_ERROR_CODE_HEADER]: String(err.spec.nats),
      [NATS_SERVICE_ERROR_HEADER]: headerSafe(err.message),
      [SHOAL_ERROR_HEADER]: err.code,
    },
    body: JSON.stringify({ error: err.toJSON() }),
  };
}

/**
 * Rebuilds the ShoalError a service replied with, or undefined when the reply
 * is not an error. `get` reads one header (case as sent).
 */
export function errorFromWire(get: (name: string) => string | undefined, body?: string): ShoalError | undefined {
  const natsCode = get(NATS_SERVICE_ERROR_CODE_HEADER);
  const shoalCode = get(SHOAL_ERROR_HEADER);
  if (!natsCode && !shoalCode) return undefined;
  const message = get(NATS_SERVICE_ERROR_HEADER) || undefined;
  let detail: Record<string, string | number | boolean> | undefined;
  if (body) {
    try {
      const parsed = JSON.parse(body) as { error?: { detail?: unknown } };
      const d = parsed?.error?.detail;
      if (d && typeof d === "object" && !Array.isArray(d)) {
        // fromEntries defines own properties: a "__proto__" key stays data, never a prototype.
        detail = Object.fromEntries(Object.entries(d).filter(([, v]) => typeof v === "string" || typeof v === "number" || typeof v === "boolean"));
      }
    } catch {
      // not JSON: the headers are enough
    }
  }
  if (isErrorCode(shoalCode)) return new ShoalError(shoalCode, message, detail ? { detail } : undefined);
  // A service that is not Shoal's (or an old one): map by NATS status.
  const n = Number(natsCode);
  const byStatus: ErrorCode = n === 404 ? "NoSuchKey" : n === 503 ? "ServiceUnavailable" : n === 504 ? "Timeout" : n >= 400 && n < 500 ? "InvalidRequest" : "InternalError";
  return new ShoalError(byStatus, message, detail ? { detail } : undefined);
}
