/**
 * Network partitions through the fault proxies. Promises exercised:
 * Durability and Convergence — the majority keeps accepting writes while one
 * server is cut off, and the isolated server converges once healed.
 */
import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startProxiedCluster, connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import type { NatsServer } from "../../src/engine/server.ts";

async function lastSeqOn(srv: NatsServer, stream: string): Promise<number> {
  const j = await srv.monitor<{ account_details?: Array<{ stream_detail?: Array<{ name: string; state: { last_seq: number } }> }> }>("/jsz?streams=true&accounts=true");
  for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) if (s.name === stream) return s.state.last_seq;
  return 0;
}

async function routesOf(srv: NatsServer): Promise<number> {
  return (await srv.monitor<{ num_routes: number }>("/routez")).num_routes;
}

/** Route count once it reaches `want`, or the last count after 10 s (routes connect with retries under load). */
async function routesReach(srv: NatsServer, want: number): Promise<number> {
  const until = Date.now() + 10_000;
  for (;;) {
    const n = await routesOf(srv);
    if (n >= want || Date.now() > until) return n;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("routes go only through the proxies; an isolated server falls behind while the majority writes, then converges", async (t) => {
  const pc = await startProxiedCluster(t, 3);
  const [a, b, c] = pc.cluster.servers as [NatsServer, NatsServer, NatsServer];
  for (const s of pc.cluster.servers) t.true((await routesReach(s, 2)) >= 2, `${s.name} has its routes`);

  // Clients reach the majority (a, b) directly; c will be cut off.
  const nc = await connectTo(t, [a.url, b.url], { maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  // Creating an identical stream again is a no-op, so the create is retried
  // through a loaded machine's slow first meta proposal (a 5 s API timeout seen in a full run).
  await eventually(() => jsm.streams.add({ name: "PART", subjects: ["part.>"], num_replicas: 3 }), () => true, { timeoutMs: 30_000, intervalMs: 200, what: "create PART" });
  // Each publish is retried (same msgID, so at most once) through the new
  // stream's leader election and any leader change: "jetstream is not
  // enabled" (no responders) and timeouts are what an election looks like.
  const publish = (id: string) =>
    eventually(async () => (await js.publish("part.x", id, { timeout: 2000, msgID: id })).seq, () => true, { timeoutMs: 15_000, intervalMs: 200, what: `publish ${id}` });
  for (let i = 0; i < 20; i++) await publish(`pre-${i}`);
  t.is(await eventually(() => lastSeqOn(c, "PART"), (n) => n >= 20, { timeoutMs: 10_000 }), 20);

  pc.isolate(c.name);
  // c loses its routes (proves no direct route bypasses the proxies)
  const cutUntil = Date.now() + 10_000;
  while ((await routesOf(c)) > 0 && Date.now() < cutUntil) await sleep(100);
  t.is(await routesOf(c), 0, "the isolated server has no routes left");

  // The majority keeps accepting writes.
  let seq = 20;
  for (let i = 0; i < 30; i++) seq = await publish(`during-${i}`);
  t.is(seq, 50);
  t.is(await lastSeqOn(c, "PART"), 20, "the isolated server saw none of it");

  pc.healAll();
  const healUntil = Date.now() + 20_000;
  while ((await lastSeqOn(c, "PART")) < 50 && Date.now() < healUntil) await sleep(200);
  t.is(await lastSeqOn(c, "PART"), 50, "the isolated server converged after the heal");
});
