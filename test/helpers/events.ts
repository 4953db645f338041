/** Reading a bucket's object-change events through the SDK, for tests. */
import type { DeliveredEvent, ShoalClient } from "../../src/client/index.ts";

/** Events of `bucket` read from the start until `want` says enough or `ms` runs out (then what arrived). */
export async function eventsOf(client: ShoalClient, bucket: string, ms: number, want: (evs: DeliveredEvent[]) => boolean): Promise<DeliveredEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  const out: DeliveredEvent[] = [];
  try {
    for await (const e of client.events({ bucket, from: "all", signal: ac.signal })) {
      out.push(e);
      if (want(out)) break;
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** The first `n` events of `bucket` (fewer when `ms` runs out first). */
export const firstEvents = (client: ShoalClient, bucket: string, n: number, ms: number) => eventsOf(client, bucket, ms, (e) => e.length >= n);
