/**
 * Runs a fast-check property as assertions: it must not fail, and — since
 * integration properties carry a time limit that interrupts them — at least
 * `minRuns` runs must have completed (a property cut short before its first
 * run proves nothing).
 */
import fc from "fast-check";
import type { ExecutionContext } from "ava";

export async function checkProperty<Ts>(t: ExecutionContext, property: fc.IAsyncProperty<Ts>, params: fc.Parameters<Ts>, minRuns = 1): Promise<void> {
  const d = await fc.check(property, params);
  // fast-check's own report (seed, path, counterexample) is the failure message
  t.false(d.failed, d.failed ? (fc.defaultReportMessage(d) ?? "the property failed") : undefined);
  t.true(d.numRuns >= minRuns, `only ${d.numRuns} run(s) completed before the time limit; at least ${minRuns} wanted`);
}
