/**
 * The list index follows a bucket's stream through an ordered consumer that
 * lives on one server. When that server stops answering (frozen here with
 * SIGSTOP; CI met the same silence on a new R3 bucket), nats.js notices only
 * after two missed heartbeats and then asks the frozen server for the
 * consumer's info, again and again: the index never catches up, and every
 * LIST and BucketInfo times out. The index must see its consumer deliver
 * nothing and build a new one on a server that works.
 */
import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startCluster, connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { putObject } from "../../src/store/writer.ts";
import { IndexSet } from "../../src/store/index.ts";

async function* bytes(s: string) {
  yield new TextEncoder().encode(s);
}

test("a list index whose consumer's server freezes builds a new consumer and sees the next write", async (t) => {
  t.timeout(120_000);
  const cluster = await startCluster(t, 3);
  const store = storeRef("frozen");
  const setup = await connectTo(t, cluster.urls);
  await eventually(async () => ensureStore(await jetstreamManager(setup), store, 3), () => true, { timeoutMs: 30_000, intervalMs: 300, what: "an R3 stream placed" });

  // the index on a connection to every server that notices a frozen one
  // within ~1.5 s (pings) and moves on; its consumer is wherever the server
  // placed it, perhaps on the very server the connection uses
  const nc = await connectTo(t, cluster.urls, { maxReconnectAttempts: -1, pingInterval: 500, maxPingOut: 2, reconnectTimeWait: 100 });
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  await eventually(() => putObject(jet, store, "before-freeze", bytes("v")), () => true, { timeoutMs: 20_000, what: "a put" });
  const idx = new IndexSet(jet.js, jet.jsm, () => store);
  t.teardown(() => idx.close());
  await idx.ready("frozen");
  // the index's consumer: the only one, once any that a create retried
  // under load left behind has gone
  const hosts = await eventually(
    async () => {
      const h: string[] = [];
      for await (const ci of jet.jsm.consumers.list(store.stream)) if (ci.cluster?.leader) h.push(ci.cluster.leader);
      return h;
    },
    (h) => h.length === 1,
    { timeoutMs: 30_000, intervalMs: 500, what: "one consumer on the stream, the index's" },
  );
  const frozen = cluster.servers.find((s) => s.name === hosts[0])!;
  t.log(`freezing ${frozen.name}, the consumer's server; the connection is on ${nc.info?.server_name}`);
  const pid = frozen.pid!;
  process.kill(pid, "SIGSTOP");
  t.teardown(() => {
    try {
      process.kill(pid, "SIGCONT");
    } catch {
      // gone
    }
  });

  // the two others go on (a new stream leader if the frozen one led); a write lands
  const w = await eventually(() => putObject(jet, store, "after-freeze", bytes("w"), { timeoutMs: 3000 }), () => true, { timeoutMs: 40_000, what: "a put on the two live servers" });
  const t0 = Date.now();
  const page = await eventually(
    async () => (await idx.ready("frozen", 5000)).page({}),
    (p) => p.contents.some((e) => e.key === "after-freeze"),
    { timeoutMs: 30_000, intervalMs: 200, what: "the index to list the write made after the freeze" },
  );
  t.log(`listed ${page.keyCount} keys ${Date.now() - t0} ms after the write at ${w.revision}`);
  t.true(Date.now() - t0 < 15_000, "caught up within 15 s");
});
