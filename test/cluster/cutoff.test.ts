/**
 * A client on a server cut off from its peers moves to another server
 * (src/connect.ts, watchJetStream). nats.js keeps a connection to a server
 * for as long as the server keeps it up, also when that server has lost its
 * routes and every JetStream request through it fails; the model test once
 * spent the rest of a run waiting out deadlines that way. Without the watch
 * this test's puts fail until its deadline (the SDK and the actors stay on
 * the cut-off server).
 */
import test from "ava";
import { startProxiedCluster, TEST_AUTH } from "../helpers/nats.ts";
import { buildConfig } from "../../src/config.ts";
import { connectNats, serverJszProbe } from "../../src/connect.ts";
import { startShoal } from "../helpers/actors.ts";
import { eventually } from "../helpers/wait.ts";

test("the SDK and the actors leave a server cut off from its peers; puts succeed again through the majority while the cut lasts", async (t) => {
  t.timeout(240_000);
  const pc = await startProxiedCluster(t, 3);
  const { client } = await startShoal(t, { url: pc.cluster.urls.join(","), instances: 2 });
  await eventually(() => client.createBucket("cutoff", { replicas: 3 }), () => true, { timeoutMs: 60_000, intervalMs: 500, what: "an R3 bucket" });
  await eventually(() => client.put("cutoff", "before", new TextEncoder().encode("before")), () => true, { timeoutMs: 30_000, intervalMs: 300, what: "a first put" });
  const port = (hostport: string) => Number(hostport.split(":").pop());
  const on = pc.cluster.servers.find((s) => s.ports.client === port(client.nc.getServer()));
  t.truthy(on, `the SDK is on one of the servers (${client.nc.getServer()})`);
  let cutAt = Date.now();
  const moves: string[] = [];
  void (async () => {
    for await (const s of client.nc.status()) if (s.type === "reconnect") moves.push(`${Date.now() - cutAt} ms: to ${s.server}`);
  })();
  cutAt = Date.now();
  pc.isolate(on!.name);
  t.teardown(() => pc.healAll());
  const body = new TextEncoder().encode("written while the cut lasts");
  await eventually(() => client.put("cutoff", "during", body), () => true, { timeoutMs: 90_000, intervalMs: 500, what: `a put while ${on!.name} is cut off` });
  const tookMs = Date.now() - cutAt;
  t.log(`servers: ${pc.cluster.servers.map((s) => `${s.name}=${s.ports.client}`).join(" ")}`);
  t.log(`cut ${on!.name}; a put succeeded again after ${tookMs} ms; the SDK reconnected at ${moves.join(", ") || "(never)"}`);
  t.not(port(client.nc.getServer()), on!.ports.client, "the SDK left the cut-off server");
  t.deepEqual(Buffer.from(await (await client.get("cutoff", "during")).bytes()).toString(), "written while the cut lasts");
});

test("a system-account connection (the health-monitor's, the rebalancer's) leaves a server that knows no meta leader", async (t) => {
  t.timeout(180_000);
  const pc = await startProxiedCluster(t, 3);
  const cfg = buildConfig({ nats: { servers: pc.cluster.urls.join(","), sysUser: TEST_AUTH.sysUser, sysPass: TEST_AUTH.sysPassword } }).nats;
  const left: string[] = [];
  const sys = await connectNats(cfg, { system: true, name: "cutoff-sys", watch: { onLeave: (server, why) => left.push(`${server}: ${why}`) } });
  t.teardown(() => sys.close());
  t.is(await serverJszProbe(sys, 2000), "ok", "a server of a whole cluster knows its meta leader");
  const port = (hostport: string) => Number(hostport.split(":").pop());
  const on = pc.cluster.servers.find((s) => s.ports.client === port(sys.getServer()))!;
  const cutAt = Date.now();
  pc.isolate(on.name);
  t.teardown(() => pc.healAll());
  const now = await eventually(async () => port(sys.getServer()), (p) => p !== on.ports.client, { timeoutMs: 90_000, intervalMs: 500, what: `the system connection off ${on.name}` });
  t.log(`cut ${on.name}; the system connection left after ${Date.now() - cutAt} ms (${left.join("; ")})`);
  t.not(now, on.ports.client, "the system connection left the cut-off server");
  t.true(left.length >= 1 && left[0]!.includes(String(on.ports.client)) && /no meta leader/.test(left[0]!), `it left because its server knew no meta leader: ${left.join("; ")}`);
  const there = await eventually(() => serverJszProbe(sys, 2000), (r) => r === "ok", { timeoutMs: 30_000, intervalMs: 500, what: "a meta leader known where it went" });
  t.is(there, "ok", "the server it moved to knows the meta leader");
});
