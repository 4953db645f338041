/**
 * Measuring several paths fairly on a machine whose speed drifts: every
 * path is warmed up once (JIT, connections, workers, first stream blocks),
 * then the paths take turns run by run, so a slow spell hits all of them
 * alike instead of whichever happened to run during it. Each run starts one
 * path further along (`rotated`), so no path always follows the same
 * other: a path that leaves the server busy behind it (a burst of raw
 * publishes) would otherwise slow the same neighbour every time.
 */

/** The paths in the order of run `r`: the list turned by `r` places. */
export function rotated<T>(entries: readonly T[], r: number): T[] {
  const k = entries.length === 0 ? 0 : r % entries.length;
  return [...entries.slice(k), ...entries.slice(0, k)];
}
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A call that has not settled after BENCH_CALL_TIMEOUT_MS (default 5 min) fails the bench, naming its path: a stalled reader must not hang it. */
const CALL_TIMEOUT_MS = Number(process.env["BENCH_CALL_TIMEOUT_MS"] ?? 300_000);
async function bounded<T>(path: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench path "${path}": a call did not finish within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([p, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

/** MB/s of each path moving `bytes` per call: median of `runs` timed calls, in turns, after one warm-up call each (given index `runs`). */
export async function mbpsInTurns<K extends string>(paths: Record<K, (i: number) => Promise<void>>, o: { runs: number; bytes: number }): Promise<Record<K, number>> {
  const entries = Object.entries(paths) as Array<[K, (i: number) => Promise<void>]>;
  const ts = new Map<K, number[]>(entries.map(([k]) => [k, []]));
  for (const [k, fn] of entries) await bounded(k, fn(o.runs));
  for (let i = 0; i < o.runs; i++) {
    for (const [k, fn] of rotated(entries, i)) {
      const t0 = performance.now();
      await bounded(k, fn(i));
      ts.get(k)!.push((performance.now() - t0) / 1000);
    }
  }
  return Object.fromEntries(entries.map(([k]) => [k, o.bytes / (1024 * 1024) / median(ts.get(k)!)])) as Record<K, number>;
}

/** Calls `fn(0…n-1)` with `concurrency` callers at a time; returns calls per second. */
export async function opsPerSecond(n: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await bounded("ops", fn(next++));
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** ops/s of each path, `n` calls at `concurrency`, in turns, after `warm` untimed calls each. */
export async function opsInTurns<K extends string>(paths: Record<K, (i: number) => Promise<unknown>>, o: { n: number; concurrency: number; warm: number }): Promise<Record<K, number>> {
  const entries = Object.entries(paths) as Array<[K, (i: number) => Promise<unknown>]>;
  for (const [, fn] of entries) await opsPerSecond(o.warm, o.concurrency, fn);
  const out = {} as Record<K, number>;
  for (const [k, fn] of entries) out[k] = await opsPerSecond(o.n, o.concurrency, fn);
  return out;
}

/**
 * ops/s of each path: `runs` rounds of `n` calls at `concurrency`, the paths
 * in turns within each round, after `warm` untimed calls each; median per
 * path. `after(path)`, untimed, runs after each of a path's rounds (and its
 * warm-up): a cleanup that the next round should not pay for.
 */
export async function opsMedianInTurns<K extends string>(paths: Record<K, (i: number) => Promise<unknown>>, o: { n: number; concurrency: number; warm: number; runs: number; after?: (path: K) => Promise<unknown> }): Promise<Record<K, number>> {
  const entries = Object.entries(paths) as Array<[K, (i: number) => Promise<unknown>]>;
  for (const [k, fn] of entries) {
    await opsPerSecond(o.warm, o.concurrency, fn);
    await o.after?.(k);
  }
  const rs = new Map<K, number[]>(entries.map(([k]) => [k, []]));
  for (let r = 0; r < o.runs; r++) {
    for (const [k, fn] of rotated(entries, r)) {
      rs.get(k)!.push(await opsPerSecond(o.n, o.concurrency, (i) => fn(r * o.n + i)));
      await o.after?.(k);
    }
  }
  return Object.fromEntries(entries.map(([k]) => [k, median(rs.get(k)!)])) as Record<K, number>;
}
