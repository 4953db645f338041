import test from "ava";
import fc from "fast-check";
import { backoffDelay, keepRunning, retry, summarizePresence, isAlive, decodeHeartbeat, type Heartbeat } from "../../src/runtime/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { setTimeout as sleep } from "node:timers/promises";

test("backoff is bounded by its cap, never negative, and grows until the cap without jitter", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (attempt, baseMs, maxMs, jitter, r) => {
        const d = backoffDelay(attempt, { baseMs, maxMs, jitter }, () => r);
        const next = backoffDelay(attempt + 1, { baseMs, maxMs, jitter: 0 });
        const cur = backoffDelay(attempt, { baseMs, maxMs, jitter: 0 });
        return d >= 0 && d <= Math.max(maxMs, 0) && next >= cur && cur <= maxMs;
      }),
    ),
  );
});

test("retry retries retryable errors, stops on the first non-retryable one, and respects attempts", async (t) => {
  let n = 0;
  const v = await retry(
    async () => {
      n++;
      if (n < 3) throw new ShoalError("Timeout");
      return "ok";
    },
    { baseMs: 1, maxMs: 2 },
  );
  t.is(v, "ok");
  t.is(n, 3);

  n = 0;
  await t.throwsAsync(() => retry(async () => (n++, Promise.reject(new ShoalError("NoSuchKey"))), { baseMs: 1 }), { message: /key does not exist/ });
  t.is(n, 1);

  n = 0;
  await t.throwsAsync(() => retry(async () => (n++, Promise.reject(new ShoalError("ServiceUnavailable"))), { baseMs: 1, maxMs: 1, attempts: 4 }));
  t.is(n, 4);
});

test("retry gives up at its deadline (injected clock)", async (t) => {
  let now = 0;
  let n = 0;
  await t.throwsAsync(() =>
    retry(
      async () => {
        n++;
        now += 1000;
        throw new ShoalError("Timeout");
      },
      { attempts: 100, deadlineMs: 3500, baseMs: 1, maxMs: 1, jitter: 0, now: () => now },
    ),
  );
  t.is(n, 4);
});

const hb = (kind: string, id: string, at: number, intervalMs = 1000): Heartbeat => ({ v: 1, kind, id, host: "h", pid: 1, started: 0, now: at, intervalMs, status: "running", inflight: 0 });

test("presence: alive within three intervals, stale after", (t) => {
  t.true(isAlive(hb("storage", "a", 10_000), 12_999));
  t.true(isAlive(hb("storage", "a", 10_000), 13_000));
  t.false(isAlive(hb("storage", "a", 10_000), 13_001));
  const p = summarizePresence([hb("storage", "a", 10_000), hb("storage", "b", 1_000), hb("replicator", "c", 9_500)], 11_000);
  t.deepEqual(p.byKind.get("storage")?.map((h) => h.id), ["a"]);
  t.deepEqual(p.stale.map((h) => h.id), ["b"]);
  t.is(p.live.length, 2);
});

test("heartbeat decoding refuses garbage with typed errors", (t) => {
  t.is(decodeHeartbeat(JSON.stringify(hb("k", "i", 5))).id, "i");
  for (const bad of ["nope", "1", JSON.stringify({ v: 2 }), JSON.stringify({ ...hb("k", "i", 5), now: "x" }), JSON.stringify({ ...hb("k", "i", 5), status: "zombie" })]) {
    const e = t.throws(() => decodeHeartbeat(bad), { instanceOf: ShoalError });
    t.true(e?.code === "MalformedPayload" || e?.code === "UnsupportedVersion");
  }
});

test("keepRunning restarts what fails with a growing backoff, and a run that lasted healthyMs starts the backoff over", async (t) => {
  const ac = new AbortController();
  const seen: number[] = [];
  let runs = 0;
  await keepRunning(
    async () => {
      runs++;
      if (runs === 4) await sleep(60); // a long, healthy run that then fails
      if (runs === 6) ac.abort();
      throw new Error(`run ${runs}`);
    },
    { signal: ac.signal, backoff: { baseMs: 1, maxMs: 8, jitter: 0 }, healthyMs: 40, failed: (_e, failures) => seen.push(failures) },
  );
  t.is(runs, 6);
  // runs 1–3 fail at once (1, 2, 3); run 4 lasted 60 ms ≥ 40: back to 1; run 5: 2; run 6 aborted
  t.deepEqual(seen, [1, 2, 3, 1, 2]);
});

test("keepRunning runs again after a run returns, resting restMs, until aborted", async (t) => {
  const ac = new AbortController();
  let runs = 0;
  const t0 = Date.now();
  await keepRunning(
    async () => {
      if (++runs === 3) ac.abort();
    },
    { signal: ac.signal, backoff: { baseMs: 1, maxMs: 1, jitter: 0 }, healthyMs: 1000, restMs: 20, failed: () => t.fail("nothing failed") },
  );
  t.is(runs, 3);
  t.true(Date.now() - t0 >= 40, "two rests of 20 ms");
});

test("tuneServerGc sets V8's heap growth unless node was given the flag itself or the config says 0", async (t) => {
  const { tuneServerGc } = await import("../../src/runtime/gc.ts");
  t.deepEqual(tuneServerGc(400, ["--heap-growing-percent=100"]), { skipped: "node-flag" });
  t.deepEqual(tuneServerGc(400, ["--heap_growing_percent", "100"]), { skipped: "node-flag" });
  t.deepEqual(tuneServerGc(0, []), { skipped: "default" });
  t.deepEqual(tuneServerGc(400, []), { heapGrowingPercent: 400 });
});
