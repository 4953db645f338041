/**
 * consumeUntilGone (src/jet/consume.ts): a durable consumer removed while no
 * pull is pending ends the iterator. With consume() alone (@nats-io/jetstream
 * 3.4.0, abort_on_missing_resource) the next pull is answered "no responders"
 * and consume() pulls again at once, for ever: the replicator's event pump
 * hung that way in CI (events-recovery) and gave no event for 90 s.
 */
import test from "ava";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectTo, startServer } from "../helpers/nats.ts";
import { consumeUntilGone } from "../../src/jet/index.ts";

test("a durable consumer removed between pulls ends consumeUntilGone's iterator, and says it is gone", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "GONE", subjects: ["gone.>"] });
  for (let round = 0; round < 3; round++) {
    const durable = `d${round}`;
    await jsm.consumers.add("GONE", { durable_name: durable, ack_policy: AckPolicy.Explicit, max_ack_pending: 1 });
    await js.publish(`gone.${round}`, "x");
    const { msgs, gone } = await consumeUntilGone(js, "GONE", durable, { max_messages: 1, expires: 10_000 });
    let pulls = 0;
    void (async () => {
      for await (const s of msgs.status()) if (s.type === "next") pulls++;
    })();
    const t0 = Date.now();
    const ended = (async () => {
      let n = 0;
      for await (const m of msgs) {
        n++;
        await m.ackAck();
        // removed after the ack, before the next pull leaves: no pull is
        // pending, so the server has no pull to answer "consumer deleted"
        await jsm.consumers.delete("GONE", durable);
      }
      return n;
    })();
    const timeout = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 8000).unref());
    const r = await Promise.race([ended, timeout]);
    if (r === "hung") await msgs.close();
    t.is(r, 1, `round ${round}: the iterator ended after the one message (it hung ${Date.now() - t0} ms, ${pulls} pulls)`);
    t.true(gone(), "gone() says why it ended");
    t.true(pulls < 100, `no pull storm: ${pulls} pulls`);
  }
});
