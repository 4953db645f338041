/**
 * An actor's contract says what it serves, and it is derived from what it
 * registers: each actor builds its `serves` list and its endpoints (or
 * controls) from one table. This checks the result on running actors: the
 * subjects each instance registered are exactly its contract's `serves`.
 * (actors/storage still writes its list beside its endpoints: the storage
 * split of issue 15 derives it; this test holds it to the same equality.)
 */
import test from "ava";
import { storage } from "../../actors/storage/index.ts";
import { replicator } from "../../actors/replicator/index.ts";
import { healthMonitor } from "../../actors/health-monitor/index.ts";
import { rebalancer } from "../../actors/rebalancer/index.ts";
import { runActor } from "../helpers/actors.ts";
import { startServer, TEST_AUTH } from "../helpers/nats.ts";

test("every actor's contract `serves` is exactly the subjects it registered, no more, no fewer", async (t) => {
  t.timeout(60_000);
  const srv = await startServer(t);
  const sys = { nats: { sysUser: TEST_AUTH.sysUser, sysPass: TEST_AUTH.sysPassword } };
  const actors = [await runActor(t, srv.url, storage), await runActor(t, srv.url, replicator), await runActor(t, srv.url, healthMonitor, sys), await runActor(t, srv.url, rebalancer, sys)];
  for (const a of actors) {
    const registered = [...new Set(a.served.map((s) => s.subject))].sort();
    const declared = [...(a.def.contract.serves ?? [])].sort();
    t.true(registered.length > 0, `${a.kind} registered something`);
    t.deepEqual(registered, declared, `${a.kind}: registered vs contract`);
  }
});
