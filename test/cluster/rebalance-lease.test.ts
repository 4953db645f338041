/**
 * Any number of rebalancer instances, one plan at a time cluster-wide: two
 * instances run; only the lease holder (KV shoal_plans `lease`) starts
 * moves; when it stops, the other takes the lease over and carries on (a
 * drain issued after the hand-over is carried out by the new holder).
 * Promise checked: convergence (5) — DESIGN.md; docs/rebalancer.md, "Rate
 * limits, lease and progress".
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connectTo } from "../helpers/nats.ts";
import { runActor } from "../helpers/actors.ts";
import { eventually } from "../helpers/eventually.ts";
import { SYS, converged, growableCluster, shoalOn } from "../helpers/rebalance.ts";
import { makeRebalancer } from "../../actors/rebalancer/index.ts";
import { KV, PLAN_KEYS, rebalanceEventSubject } from "../../src/subjects/index.ts";

const GRACE_MS = 3000;

test("two rebalancers: only the lease holder moves replicas; when it stops, the other takes the lease and finishes a drain", async (t) => {
  t.timeout(300_000);
  const g = await growableCluster(t, 3);
  const url = g.urls().join(",");
  const { client, jsm, actors } = await shoalOn(t, url, { graceMs: GRACE_MS, intervalMs: 400 });
  const first = actors[1]!;
  const second = await runActor(t, url, makeRebalancer({ intervalMs: 400 }), { health: { repairGraceMs: GRACE_MS }, nats: SYS });
  const ids = new Set([first.id, second.id]);
  const nc = await connectTo(t, url);
  const started: Array<{ by: string; stream: string; reason: string }> = [];
  nc.subscribe(rebalanceEventSubject("started"), {
    callback: (_e, m) => {
      const { by, move } = m.json<{ by: string; move: { stream: string; reason: string } }>();
      started.push({ by, stream: move.stream, reason: move.reason });
    },
  });
  const kv = await new Kvm(jetstream(nc)).open(KV.plans);
  const owner = async () => {
    const e = await kv.get(PLAN_KEYS.lease);
    const v = e && e.operation === "PUT" && e.value.length ? e.json<{ owner: string; until: number }>() : undefined;
    return v && v.until > Date.now() && ids.has(v.owner) ? v.owner : undefined;
  };

  for (const b of ["ls0", "ls1", "ls2"]) {
    await client.createBucket(b, { replicas: 3 });
    for (let i = 0; i < 4; i++) await client.put(b, `k${i}`, randomBytes(256 * 1024));
  }
  const holder = (await eventually("one instance holds the lease", 30_000, owner)).value;

  // scale-out: every move is started by the holder
  await g.add("n4");
  await eventually("moved onto n4 and converged", 120_000, () => converged(jsm, ["n1", "n2", "n3", "n4"], []), 500);
  t.true(started.length > 0, "the scale-out moved replicas");
  t.deepEqual([...new Set(started.map((s) => s.by))], [holder], "only the lease holder started moves");
  t.is(await owner(), holder, "the lease stayed with its holder");

  // the holder stops: the other instance takes the lease over and carries out a drain
  const [stopping, staying] = holder === first.id ? [first, second] : [second, first];
  await stopping.stop(5000);
  await eventually("the other instance took the lease", 30_000, async () => (await owner()) === staying.id || undefined);
  const before = started.length;
  await eventually("drain n4 recorded", 30_000, () => client.rebalance.drain("n4"), 1000);
  const row = await eventually("n4 drained and safe to stop", 120_000, async () => {
    const n4 = (await client.rebalance.servers()).find((s) => s.name === "n4");
    return n4?.safeToStop && n4.replicas === 0 ? n4 : undefined;
  }, 500);
  t.is(row.value.leaders, 0);
  const after = started.slice(before);
  t.true(after.length > 0, "the drain moved replicas");
  t.deepEqual([...new Set(after.map((s) => s.by))], [staying.id], "the new holder carried out the drain");
  await eventually("converged without n4", 120_000, () => converged(jsm, ["n1", "n2", "n3"], ["n4"]), 500);
});
