/**
 * Waits for a condition: polls `check` (a throw counts as "not yet") every
 * `everyMs` until it returns a value other than false/undefined, or fails
 * with the last reason after `ms`. The one wait-for helper tests use instead
 * of sleeps.
 */
import { setTimeout as sleep } from "node:timers/promises";

export async function eventually<T>(what: string, ms: number, check: () => Promise<T | false | undefined> | T | false | undefined, everyMs = 250): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  let last = "";
  for (;;) {
    try {
      const v = await check();
      if (v !== false && v !== undefined) return { value: v, ms: Date.now() - t0 };
      last = "condition false";
    } catch (e) {
      last = String((e as Error)?.message ?? e);
    }
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms (last: ${last})`);
    await sleep(everyMs);
  }
}
