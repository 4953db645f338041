/**
 * Retry with jittered exponential backoff, bounded in attempts and time.
 * The runtime owns retries; actors and the SDK call these, never their own loops.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toShoalError } from "../errors/index.ts";
import { isConnectionClosed } from "../errors/nats.ts";

export interface BackoffOptions {
  /** First delay. */
  baseMs: number;
  /** Largest delay. */
  maxMs: number;
  /** 0 = no jitter; 1 = "full jitter" (uniform in [0, delay]). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = Object.freeze({ baseMs: 100, maxMs: 2000, jitter: 0.5 });

/**
 * Delay before retry number `attempt` (1-based): base·2^(attempt-1), capped at
 * max, then reduced by up to `jitter` of itself. Pure: pass `random` for tests.
 */
export function backoffDelay(attempt: number, o: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const exp = Math.min(o.maxMs, o.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  const j = Math.min(Math.max(o.jitter, 0), 1);
  return Math.max(0, Math.round(exp * (1 - j * random())));
}

export interface RetryOptions extends Partial<BackoffOptions> {
  /** Total attempts including the first. */
  attempts?: number;
  /** Give up once this much time has passed since the first attempt. */
  deadlineMs?: number;
  /** Which failures to retry; default: ShoalErrors marked retryable (timeouts, no responders, 503s). */
  retryable?: (e: unknown) => boolean;
  signal?: AbortSignal;
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
  now?: () => number;
  random?: () => number;
}

/**
 * A closed connection stays closed: to whoever asked it is a retryable 503
 * (another gateway, a new connection will do), but retrying on this one only
 * waits out the attempts (a direct put took 79 s to fail that way).
 */
export function isRetryable(e: unknown): boolean {
  if (isConnectionClosed(e) || isConnectionClosed((e as { cause?: unknown } | undefined)?.cause)) return false;
  return toShoalError(e).retryable;
}

/**
 * Runs `fn` until it succeeds, a failure is not retryable, attempts run out
 * or the deadline passes. The backoff spaces the *starts* of attempts: an
 * attempt that failed after waiting out its own timeout has waited already,
 * and the next one goes at once. (An SDK put during a stream election timed
 * out an attempt, paused up to 1 s more, and so missed the answer its
 * earlier attempt had just earned, bench/storage.bench.ts failover.)
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 5;
  const now = o.now ?? Date.now;
  const started = now();
  const deadline = o.deadlineMs === undefined ? Infinity : started + o.deadlineMs;
  const b: BackoffOptions = { baseMs: o.baseMs ?? DEFAULT_BACKOFF.baseMs, maxMs: o.maxMs ?? DEFAULT_BACKOFF.maxMs, jitter: o.jitter ?? DEFAULT_BACKOFF.jitter };
  const retryable = o.retryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    const began = now();
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || !retryable(e)) throw e;
      const delay = Math.max(0, backoffDelay(attempt, b, o.random) - (now() - began));
      if (now() + delay >= deadline) throw e;
      o.onRetry?.(e, attempt, delay);
      await sleep(delay, undefined, o.signal ? { signal: o.signal } : undefined);
    }
  }
}

export interface KeepRunningOptions {
  signal: AbortSignal;
  /** Delays between failed runs. */
  backoff: BackoffOptions;
  /**
   * A run that lasted this long before it failed starts the backoff over:
   * something that fails once in a while comes back after the first delay,
   * not after the cap that failures long ago had reached.
   */
  healthyMs: number;
  /** Pause after a run that returned (0 by default). */
  restMs?: number;
  /** Told of each failure, before the delay. */
  failed: (e: unknown, failures: number, retryInMs: number) => void;
}

/**
 * Runs `run` again whenever it ends, until `signal` aborts: after `restMs`
 * when it returned, after a backoff when it failed. The supervisor of an
 * actor's loops and of the replicator's pumps.
 */
export async function keepRunning(run: () => Promise<void>, o: KeepRunningOptions): Promise<void> {
  const pause = (ms: number) => sleep(ms, undefined, { signal: o.signal }).catch(() => undefined);
  for (let failures = 0; !o.signal.aborted; ) {
    const t0 = Date.now();
    try {
      await run();
      failures = 0;
      if (o.restMs && !o.signal.aborted) await pause(o.restMs);
    } catch (e) {
      if (o.signal.aborted) return;
      if (Date.now() - t0 >= o.healthyMs) failures = 0;
      failures++;
      const delay = backoffDelay(failures, o.backoff);
      o.failed(e, failures, delay);
      await pause(delay);
    }
  }
}

/** `p`, or undefined once `ms` have passed without it settling (it goes on, unobserved). */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => (t = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(t);
  }
}
