/**
 * The replicator's event pump must not wait forever on a consumer that does
 * not exist. The model test (test/cluster/model.test.ts) saw a bucket whose
 * `shoal-events` consumer had been created through a server cut off from its
 * peers: after the heal the consumer did not exist, the pump's consume()
 * kept waiting on it without an error, and the bucket got no events at all
 * (ConsumerNotFound 90 s after the heal). Here the consumer is removed out
 * from under a running pump; the pump must notice, create it again, and the
 * next change must get its event (exactly once: the redelivered earlier
 * changes are dropped by their Nats-Msg-Id). Promise exercised: Events.
 */
import test from "ava";
import { jetstreamManager } from "@nats-io/jetstream";
import { runActor, startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { replicator, EVENTS_DURABLE } from "../../actors/replicator/index.ts";
import { objectStoreStream } from "../../src/subjects/index.ts";
import { createLogger } from "../../src/log.ts";
import { firstEvents } from "../helpers/events.ts";


test("an events consumer removed under a running replicator is created again; the next change gets its event, earlier ones are not repeated", async (t) => {
  t.timeout(180_000);
  const { url, client } = await startShoal(t);
  // the replicator's log (info and up), shown when the test fails
  const logged: string[] = [];
  await runActor(t, url, replicator, { logger: createLogger({ level: "info", destination: { write: (line: string) => void logged.push(line.trim()) } }) });
  const jsm = await jetstreamManager(await connectTo(t, url));
  await client.createBucket("ev-gone");
  await client.put("ev-gone", "a", "1");
  t.deepEqual((await firstEvents(client, "ev-gone", 1, 10_000)).map((e) => e.key), ["a"]);

  await jsm.consumers.delete(objectStoreStream("ev-gone"), EVENTS_DURABLE);
  await client.put("ev-gone", "b", "2");
  // The pump learns of the deletion from the server's notice to its pending
  // pull or, when none was pending, after two missed idle heartbeats of its
  // 10 s pulls (PUMP_PULL_MS): ~10 s, and the supervisor's restart; the wait
  // allows for a loaded machine (45 s ran out once in CI, with the suite's
  // files running side by side; the log below says why if it runs out again).
  const evs = await firstEvents(client, "ev-gone", 2, 90_000);
  // The diagnosis goes into the assertion's message: a CI run shows only the
  // failure summary at the end of its output, not the test's logs.
  let why = "";
  if (evs.length < 2) {
    const ci = await jsm.consumers.info(objectStoreStream("ev-gone"), EVENTS_DURABLE).catch((e: unknown) => String(e));
    why = `; after ${evs.length} event(s): consumer ${JSON.stringify(ci)}; replicator log:\n${logged.slice(-30).join("\n")}`;
  }
  t.deepEqual(evs.map((e) => e.key), ["a", "b"], `the change after the consumer was removed has its event${why}`);
  // nothing more arrives: the redelivered first change was a duplicate
  t.is((await firstEvents(client, "ev-gone", 3, 3000)).length, 2);
});
