/**
 * The harness's own cluster tests, and the Foundation's done-criterion:
 * kill one server of a 3-node cluster and an R3 stream keeps accepting and
 * serving writes; the killed server (and a wiped replacement) catch up.
 * Consistency promise exercised: Durability (an acked write survives the loss
 * of a minority of servers).
 */
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { startCluster, connectTo } from "../helpers/nats.ts";
import type { NatsServer } from "../../src/engine/server.ts";

const STREAM = "DURABLE";

/** Publishes with a bounded retry (count and time) through failover. */
async function publishThroughFailover(js: JetStreamClient, subject: string, data: string, deadlineMs = 15_000): Promise<number> {
  const until = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return (await js.publish(subject, data, { timeout: 2000, msgID: data })).seq;
    } catch (e) {
      if (Date.now() > until || attempt > 60) throw e;
      await sleep(250);
    }
  }
}

/** Last sequence of the stream as one server's own /jsz reports it (not the leader's view). */
async function lastSeqOn(srv: NatsServer): Promise<number> {
  const j = await srv.monitor<{ account_details?: Array<{ stream_detail?: Array<{ name: string; state: { last_seq: number; messages: number } }> }> }>("/jsz?streams=true&accounts=true");
  for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) if (s.name === STREAM) return s.state.last_seq;
  return 0;
}

async function waitCaughtUp(srv: NatsServer, seq: number, ms = 20_000): Promise<number> {
  const until = Date.now() + ms;
  let last = 0;
  while (Date.now() < until) {
    last = await lastSeqOn(srv).catch(() => 0);
    if (last >= seq) return last;
    await sleep(200);
  }
  return last;
}

async function readAll(jsm: JetStreamManager, upTo: number): Promise<string[]> {
  const out: string[] = [];
  for (let seq = 1; seq <= upTo; seq++) {
    const m = await jsm.direct.getMessage(STREAM, { seq });
    out.push(m ? m.string() : "<missing>");
  }
  return out;
}

test("an R3 stream keeps accepting and serving writes when its leader is SIGKILLed; the server catches up after restart, and so does a wiped replacement", async (t) => {
  const cluster = await startCluster(t, 3);
  const nc = await connectTo(t, cluster.urls, { maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["durable.>"], num_replicas: 3, allow_direct: true });

  const acked: string[] = [];
  for (let i = 0; i < 50; i++) {
    const v = `before-${i}`;
    await publishThroughFailover(js, "durable.x", v);
    acked.push(v);
  }

  const leaderName = (await jsm.streams.info(STREAM)).cluster?.leader;
  t.truthy(leaderName);
  const leader = cluster.server(leaderName!);
  await leader.kill();
  const t0 = Date.now();

  // Writes continue on the surviving majority.
  for (let i = 0; i < 50; i++) {
    const v = `during-${i}`;
    await publishThroughFailover(js, "durable.x", v);
    acked.push(v);
  }
  t.log(`first 50 writes after SIGKILL of the stream leader took ${Date.now() - t0} ms`);
  t.not((await jsm.streams.info(STREAM)).cluster?.leader, leaderName);

  // Every acknowledged write is served, in order.
  t.deepEqual(await readAll(jsm, acked.length), acked);

  // The killed server comes back and catches up (judged from its own /jsz).
  await leader.start();
  t.is(await waitCaughtUp(leader, acked.length), acked.length);

  // A follower loses its disk (replacement node with the same name) and catches up too.
  const follower = cluster.servers.find((s) => s.name !== leaderName && s.running)!;
  await follower.restartWiped();
  t.is(await waitCaughtUp(follower, acked.length), acked.length);
  await cluster.waitReady();
  t.deepEqual(await readAll(jsm, acked.length), acked);
});

test("cluster start elects one meta leader that every server agrees on", async (t) => {
  const cluster = await startCluster(t, 3);
  const leader = await cluster.waitReady();
  t.true(cluster.servers.some((s) => s.name === leader));
  for (const s of cluster.servers) {
    const j = await s.monitor<{ meta_cluster?: { leader?: string; cluster_size?: number } }>("/jsz");
    t.is(j.meta_cluster?.leader, leader);
    t.is(j.meta_cluster?.cluster_size, 3);
  }
});
