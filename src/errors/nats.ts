/**
 * Classification of NATS failures by what the client says they are — its
 * error classes, and the JetStream API error code (`err_code`) — never by
 * matching English message text, which the server and client may reword.
 */
import { errors as natsErrors } from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";
import { JetStreamStatusError, jserrors } from "@nats-io/jetstream/internal";

/** JetStream API error codes Shoal tells apart (nats-server's server/errors.json). */
export const JS_CODE = {
  /** JSClusterNoPeersErrF: "no suitable peers for placement". */
  NoSuitablePeers: 10005,
  /** JSClusterNotAvailErr: "JetStream system temporarily unavailable". */
  ClusterNotAvailable: 10008,
  /** JSConsumerNotFoundErr. */
  ConsumerNotFound: 10014,
  /** JSMaximumConsumersLimitErr: "maximum consumers limit reached" (nats-server 2.15: 1000 per stream unless the stream sets its own). */
  MaximumConsumers: 10026,
  /** JSInsufficientResourcesErr: "insufficient resources". */
  InsufficientResources: 10023,
  /** JSStorageResourcesExceededErr: "insufficient storage resources available". */
  StorageResourcesExceeded: 10047,
  /** JSNoMessageFoundErr: "no message found". */
  NoMessageFound: 10037,
  /** JSNotEnabledForAccountErr. */
  NotEnabledForAccount: 10039,
  /** JSStreamNotFoundErr: "stream not found". */
  StreamNotFound: 10059,
  /** JSStreamMsgDeleteFailedF: a message delete failed: "no message found" (deleted) or "stream store EOF" (past the end). */
  MsgDeleteFailed: 10057,
  /** JSSequenceNotFoundErrF: "sequence N not found" — nats-server 2.15's answer to deleting a message already deleted (measured). */
  SequenceNotFound: 10043,
  /** JSStreamMismatchErr: "expected stream does not match". */
  StreamMismatch: 10060,
  /** JSStreamWrongLastSequenceErrF: "wrong last sequence: N". */
  WrongLastSequence: 10071,
  /** JSStreamReplicasNotSupportedErr: "replicas > 1 not supported in non-clustered mode". */
  ReplicasNotSupported: 10074,
  /** JSStreamWrongLastSequenceConstantErr: "wrong last sequence". */
  WrongLastSequenceConstant: 10164,
} as const;

/** The JetStream API error code of `e` (or of its cause), if it carries one. */
export function jsApiCode(e: unknown): number | undefined {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 4; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof JetStreamApiError) return c.code;
  }
  return undefined;
}

/** Whether `e` is a JetStream API error with one of `codes`. */
export function isJsApiError(e: unknown, ...codes: number[]): boolean {
  const code = jsApiCode(e);
  return code !== undefined && codes.includes(code);
}

/** A compare-and-set that lost: the subject's last sequence was not the one expected. */
export function isWrongLastSequence(e: unknown): boolean {
  return isJsApiError(e, JS_CODE.WrongLastSequence, JS_CODE.WrongLastSequenceConstant);
}

/** The stream holds as many consumers as it may (JSMaximumConsumersLimitErr). */
export function isMaximumConsumers(e: unknown): boolean {
  return isJsApiError(e, JS_CODE.MaximumConsumers);
}

/** The stream (or the message asked for) does not exist. */
export function isStreamNotFound(e: unknown): boolean {
  return isJsApiError(e, JS_CODE.StreamNotFound);
}

export function isNoMessageFound(e: unknown): boolean {
  return isJsApiError(e, JS_CODE.NoMessageFound) || (e instanceof JetStreamStatusError && (e as JetStreamStatusError).code === 404);
}

/** A message delete that found nothing to delete (already deleted, or past the stream's end). */
export function isMessageGone(e: unknown): boolean {
  return isJsApiError(e, JS_CODE.MsgDeleteFailed, JS_CODE.NoMessageFound, JS_CODE.SequenceNotFound);
}

/**
 * JetStream refused for want of room. 10047 ("insufficient storage resources
 * available") always means storage. 10023 ("insufficient resources") means
 * it only as the answer to a write — measured: a publish into a full
 * `max_file_store` — because nats-server also answers any JetStream API
 * request with 10023 when too many are outstanding (its API overload), so
 * `write` says whether `e` answered a publish.
 */
export function isStorageFull(e: unknown, o: { write?: boolean } = {}): boolean {
  return o.write ? isJsApiError(e, JS_CODE.InsufficientResources, JS_CODE.StorageResourcesExceeded) : isJsApiError(e, JS_CODE.StorageResourcesExceeded);
}

/** The cluster cannot place the replicas asked for (a single server, or too few peers). */
export function isCannotPlaceReplicas(e: unknown): boolean {
  return isJsApiError(e, JS_CODE.ReplicasNotSupported, JS_CODE.InsufficientResources, JS_CODE.NoSuitablePeers);
}

/** The request (or a JetStream API call) got no reply in time. */
export function isTimeout(e: unknown): boolean {
  return e instanceof natsErrors.TimeoutError || (e instanceof natsErrors.RequestError && e.cause instanceof natsErrors.TimeoutError);
}

/** Nobody listens on the subject (503 no responders). */
export function isNoResponders(e: unknown): boolean {
  if (e instanceof natsErrors.NoRespondersError) return true;
  if (e instanceof natsErrors.RequestError && e.isNoResponders()) return true;
  return e instanceof JetStreamStatusError && (e as JetStreamStatusError).code === 503;
}

/** JetStream cannot answer now: not enabled (no responders on its API), or no meta leader / quorum. */
export function isJetStreamUnavailable(e: unknown): boolean {
  return e instanceof jserrors.JetStreamNotEnabled || isJsApiError(e, JS_CODE.ClusterNotAvailable, JS_CODE.NotEnabledForAccount);
}

/**
 * A placement refused because a peer is offline (10005 "no suitable peers
 * for placement, peer offline"): transient, unlike a cluster too small for
 * the count. JetStream gives both the one code; the reason is only in the
 * API error's description, so that field (the server's, not a client
 * message) is read, and only for this code.
 */
export function isPeerOffline(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 4; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof JetStreamApiError) return c.code === JS_CODE.NoSuitablePeers && /peer offline/i.test(c.apiError().description ?? "");
  }
  return false;
}

/** The connection's permissions do not allow the publish or subscription. */
export function isPermissionViolation(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 4; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof natsErrors.PermissionViolationError) return true;
  }
  return false;
}

/** The connection is closed or draining: the request cannot be sent. */
export function isConnectionClosed(e: unknown): boolean {
  return e instanceof natsErrors.ClosedConnectionError || e instanceof natsErrors.DrainingConnectionError;
}
