/**
 * The stock @nats-io/obj client as a baseline on nats-server 2.15.
 *
 * A stock get reads through an ordered consumer that it leaves on the
 * server for nats.js's 5-minute inactivity threshold, and nats-server 2.15
 * refuses a stream's 1001st consumer unless the stream sets a limit of its
 * own (`default_max_consumers`; -1 means that default). So after 1000 gets
 * of one bucket within 5 minutes every further stock get fails ("maximum
 * consumers limit reached") — measured: 1000 sequential getBlob calls
 * succeeded and the next 500 failed. A benchmark that counted only the gets
 * that succeeded compared Shoal with a baseline that mostly failed fast.
 * The stock buckets of the benches therefore get room for every consumer
 * their gets leave behind: the baseline at its best settings, not at a
 * limit it runs into. (Shoal's own reads use Direct Get, and its one-pass
 * consumers are deleted when done: src/jet/consume.ts dropOrdered.)
 */
import type { JetStreamManager } from "@nats-io/jetstream";

export const STOCK_MAX_CONSUMERS = 1_000_000;

/** Raises the consumer limit of the stock bucket `bucket`'s stream (OBJ_<bucket>). */
export async function roomForStockGets(jsm: JetStreamManager, bucket: string): Promise<void> {
  const stream = `OBJ_${bucket}`;
  const cfg = (await jsm.streams.info(stream)).config;
  // nats.js 3.4's types predate nats-server letting a stream's max_consumers change
  await jsm.streams.update(stream, { ...cfg, max_consumers: STOCK_MAX_CONSUMERS } as unknown as Parameters<JetStreamManager["streams"]["update"]>[1]);
}

/**
 * Deletes every consumer the stock gets left on `bucket`'s stream, so that
 * the next phase does not pay for them: a stream with thousands of
 * consumers matches each new message against all of them (measured: stock
 * 4 KiB puts at c16 fell from ~2400 to 637–1227 ops/s after a get phase
 * had left 1000–2200 consumers behind).
 */
export async function dropStockConsumers(jsm: JetStreamManager, bucket: string): Promise<number> {
  const stream = `OBJ_${bucket}`;
  const names: string[] = [];
  for await (const n of jsm.consumers.list(stream)) names.push(n.name);
  for (let i = 0; i < names.length; i += 64) await Promise.all(names.slice(i, i + 64).map((n) => jsm.consumers.delete(stream, n).catch(() => false)));
  return names.length;
}
