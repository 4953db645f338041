/**
 * eventually(): polls a condition until it holds, bounded in time and in
 * attempts, instead of a fixed sleep. Returns the last value when `done`
 * accepts it; throws with the last value (or error) otherwise.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ShoalError } from "../../src/errors/index.ts";

export interface EventuallyOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
  /** Most attempts (default 1000). */
  attempts?: number;
  what?: string;
}

export async function eventually<T>(probe: () => Promise<T>, done: (v: T) => boolean, o: EventuallyOptions = {}): Promise<T> {
  const until = Date.now() + (o.timeoutMs ?? 15_000);
  const attempts = o.attempts ?? 1000;
  let last: { v?: T; e?: unknown } = {};
  for (let i = 0; i < attempts && Date.now() < until; i++) {
    try {
      const v = await probe();
      last = { v };
      if (done(v)) return v;
    } catch (e) {
      last = { e };
    }
    await sleep(o.intervalMs ?? 100);
  }
  const seen = last.e !== undefined ? `error ${String((last.e as Error)?.message ?? last.e)}` : JSON.stringify(last.v)?.slice(0, 500);
  throw new Error(`${o.what ?? "condition"} did not hold in time; last seen: ${seen}`);
}

/**
 * Runs `fn` again while it fails with a retryable ShoalError (a cluster that
 * is still electing leaders, a peer the meta leader still counts offline),
 * bounded in time; any other failure is thrown at once.
 */
export async function whileRetryable<T>(fn: () => Promise<T>, o: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const until = Date.now() + (o.timeoutMs ?? 60_000);
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof ShoalError && e.retryable) || Date.now() > until) throw e;
      await sleep(o.intervalMs ?? 500);
    }
  }
}
