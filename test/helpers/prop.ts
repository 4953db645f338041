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
  // fast-check's own report (seed, path, counterexample) is the failure message,
  // with what the failing run threw (the report leaves it out)
  t.false(d.failed, d.failed ? `${fc.defaultReportMessage(d) ?? "the property failed"}\n${describeError(d.errorInstance)}` : undefined);
  t.true(d.numRuns >= minRuns, `only ${d.numRuns} run(s) completed before the time limit; at least ${minRuns} wanted`);
}

function describeError(e: unknown): string {
  if (e === undefined || e === null) return "the property returned false";
  if (e instanceof Error) return `threw: ${e.stack ?? e.message}${"cause" in e && e.cause ? `\ncaused by: ${String(e.cause)}` : ""}`;
  return `threw: ${String(e)}`;
}
