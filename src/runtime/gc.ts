/**
 * V8's old-generation growth for Shoal's server processes (`shoal dev`,
 * `shoal start`): they move large transfers through short-lived buffers, and
 * with V8's own heap-growing heuristic that keeps the old generation's limit
 * a few MB above a ~16 MB heap, every 64 MiB GET or PUT ran 2–7 major GCs
 * (incremental marking started by the allocation limit, not by memory in
 * use): up to twice the node process's CPU per transfer and its rate cut by a
 * third (docs/benchmarks.md, "Major GCs: the old generation's growth").
 * A fixed growth factor (`--heap-growing-percent`) leaves room between
 * major GCs; V8 still bounds the heap by its maximum and still collects when
 * idle (memory reducer). `runtime.heapGrowingPercent` (SHOAL_HEAP_GROWING_PERCENT):
 * 300 by default — 200 left a third of the major GCs, 300 and 400 removed
 * them alike, and 400 cost the gateway ~8 MiB more peak RSS over a 1 GiB
 * multipart upload — 0 leaves V8's heuristic. A flag given to node itself wins.
 *
 * Set at run time (`v8.setFlagsFromString`): V8 reads this flag at each
 * limit computation, so it takes effect from the next major GC on, for the
 * main thread and the workers started after it.
 */
import { setFlagsFromString } from "node:v8";

/** What was applied: the percent, or why nothing was. */
export type GcTuning = { heapGrowingPercent: number } | { skipped: "default" | "node-flag" };

export function tuneServerGc(heapGrowingPercent: number, execArgv: readonly string[] = process.execArgv): GcTuning {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return { skipped: "node-flag" };
  if (heapGrowingPercent <= 0) return { skipped: "default" };
  setFlagsFromString(`--heap-growing-percent=${Math.floor(heapGrowingPercent)}`);
  return { heapGrowingPercent: Math.floor(heapGrowingPercent) };
}
