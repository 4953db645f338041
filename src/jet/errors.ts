/**
 * One classifier for what JetStream throws, by error class and
 * `JetStreamApiError.code` — never by the English text of a message.
 * Every primitive in src/jet retries on `transient` only, and turns what is
 * left into a ShoalError whose `detail.jsCode` keeps the server's code.
 */
import { ClosedConnectionError, DrainingConnectionError, NoRespondersError, RequestError, TimeoutError } from "@nats-io/nats-core";
import { JetStreamApiError, JetStreamError, JetStreamApiCodes } from "@nats-io/jetstream";
import { JetStreamStatusError } from "@nats-io/jetstream/internal";
import { ShoalError, type ErrorCode } from "../errors/index.ts";
import { isStorageFull } from "../errors/nats.ts";

/** JetStream API error codes src/jet decides on (nats-server's errors.json names in comments). */
export const JS_CODES = Object.freeze({
  ...JetStreamApiCodes,
  /** JSClusterNotAvailErr / "JetStream system temporarily unavailable". */
  ClusterNotAvailable: 10008,
  /** JSStreamNotMatchErr: expected stream does not match. */
  StreamNotMatch: 10060,
  /** JSStreamWrongLastMsgIDErr. */
  StreamWrongLastMsgId: 10070,
  /** JSMessageTTLDisabledErr: Nats-TTL on a stream without allow_msg_ttl. */
  MessageTtlDisabled: 10166,
  /** JSMessageTTLInvalidErr. */
  MessageTtlInvalid: 10165,
  /** JSStreamMsgDeleteFailedF: a delete that failed, including of a sequence past the stream's end (measured). */
  MsgDeleteFailed: 10057,
  /** Fast-ingest batch on a stream without allow_batched (measured: "batch publish is disabled"). */
  BatchedDisabled: 10205,
  /** JSStreamTTLDisableErr (measured: "message TTL status can not be disabled"). */
  MessageTtlCannotDisable: 10052,
  /**
   * JSStreamDuplicateMessageConflict, "duplicate message id is in process":
   * a clustered stream leader is still proposing an earlier publish with the
   * same Nats-Msg-Id (seen at R3 under load: a retried chunk publish). That
   * one may yet land; a later retry gets its duplicate ack.
   */
  DuplicateMessageInProcess: 10158,
});

export type JetFailure =
  /** Timeout, no responders, JetStream not (yet) enabled, cluster unavailable, leader change: the same request may succeed later. */
  | "transient"
  /** An Expected-Last-(Subject-)Sequence / Msg-Id header did not hold: someone else wrote first. */
  | "conflict"
  /** Message or stream absent. */
  | "notFound"
  /** The stream refuses this kind of message (feature off, bad header, batch limits): the same request will fail again. */
  | "refused"
  | "unknown";

export function jsCode(e: unknown): number | undefined {
  if (e instanceof JetStreamApiError) return e.code;
  const c = (e as { api_error?: { err_code?: unknown } } | null)?.api_error?.err_code;
  return typeof c === "number" ? c : undefined;
}

export function classify(e: unknown): JetFailure {
  if (e instanceof ShoalError) return e.retryable ? "transient" : "refused";
  if (e instanceof TimeoutError) return "transient";
  if (e instanceof NoRespondersError) return "transient";
  if (e instanceof RequestError) return e.isNoResponders() || e.cause instanceof TimeoutError ? "transient" : "unknown";
  // thrown by js.publish when no stream answers (class not exported by @nats-io/jetstream 3.4: matched by its name)
  if ((e as { name?: unknown } | null)?.name === "JetStreamNotEnabled") return "transient";
  if (e instanceof ClosedConnectionError || e instanceof DrainingConnectionError) return "refused";
  const code = jsCode(e);
  if (code !== undefined) {
    if (code === JS_CODES.StreamWrongLastSequence || code === JS_CODES.StreamWrongLastSequenceUnknown || code === JS_CODES.StreamWrongLastMsgId) return "conflict";
    if (code === JS_CODES.NoMessageFound || code === JS_CODES.StreamNotFound) return "notFound";
    if (code === JS_CODES.ClusterNotAvailable || code === JS_CODES.JetStreamNotEnabledForAccount || code === JS_CODES.DuplicateMessageInProcess) return "transient";
    return "refused";
  }
  // 503 / 408 / 404 statuses of Direct Get and pull requests
  if (e instanceof JetStreamStatusError) return e.code === 404 ? "notFound" : e.code === 503 || e.code === 408 ? "transient" : "unknown";
  if (e instanceof JetStreamError) return "unknown";
  return "unknown";
}

const SHOAL_CODE: Record<JetFailure, ErrorCode> = {
  transient: "ServiceUnavailable",
  conflict: "Conflict",
  notFound: "InternalError",
  refused: "InternalError",
  unknown: "InternalError",
};

/**
 * The ShoalError a primitive throws once it gives up; the server's code (if
 * any) is in `detail.jsCode`. `write`: `e` answered a publish (a refusal for
 * want of storage is then InsufficientStorage; see isStorageFull).
 */
export function toJetError(e: unknown, what: string, o: { write?: boolean } = {}): ShoalError {
  if (e instanceof ShoalError) return e;
  const kind = classify(e);
  const code = kind === "transient" && e instanceof TimeoutError ? "Timeout" : isStorageFull(e, o) ? "InsufficientStorage" : SHOAL_CODE[kind];
  const js = jsCode(e);
  return new ShoalError(code, `${what}: ${kind}`, { cause: e, detail: js === undefined ? { jet: kind } : { jet: kind, jsCode: js } });
}

/** Whether `e` (as thrown by a primitive, or raw) is a lost compare-and-set: an expectation header did not hold. */
export function isConflict(e: unknown): boolean {
  if (e instanceof ShoalError) return (e.detail as { jet?: unknown } | undefined)?.jet === "conflict";
  return classify(e) === "conflict";
}
