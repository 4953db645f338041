/**
 * Retry with jittered exponential backoff, bounded in attempts and time.
 * The runtime owns retries; actors and the SDK call these, never their own loops.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toShoalError } from "../errors/index.ts";

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

export function isRetryable(e: unknown): boolean {
  return toShoalError(e).retryable;
}

/** Runs `fn` until it succeeds, a failure is not retryable, attempts run out or the deadline passes. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 5;
  const now = o.now ?? Date.now;
  const started = now();
  const deadline = o.deadlineMs === undefined ? Infinity : started + o.deadlineMs;
  const b: BackoffOptions = { baseMs: o.baseMs ?? DEFAULT_BACKOFF.baseMs, maxMs: o.maxMs ?? DEFAULT_BACKOFF.maxMs, jitter: o.jitter ?? DEFAULT_BACKOFF.jitter };
  const retryable = o.retryable ?? isRetryable;
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || !retryable(e)) throw e;
      const delay = backoffDelay(attempt, b, o.random);
      if (now() + delay >= deadline) throw e;
      o.onRetry?.(e, attempt, delay);
      await sleep(delay, undefined, o.signal ? { signal: o.signal } : undefined);
    }
  }
}
