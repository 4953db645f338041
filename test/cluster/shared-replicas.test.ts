/**
 * Shared state is not silently R1 (issue 14, defect 6). When a cluster
 * cannot place three replicas at Shoal's first start (a peer missing), the
 * KV buckets and SHOAL_EVENTS are created at R1 rather than not at all. The
 * health view must call that degraded, the streams must be raised to R3 once
 * the peers exist, and buckets created without a replica count get the
 * cluster's (3), not R1.
 *
 * (nats-server 2.15 places R3 on a peer that is merely offline; what it
 * cannot place on is a peer the meta group does not know — at first boot, or
 * after a server was removed — which the first test sets up with a peer
 * removal.)
 */
import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { runActor, startShoal } from "../helpers/actors.ts";
import { TEST_AUTH, connectSys, connectTo, startCluster } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import { healthMonitor } from "../../actors/health-monitor/index.ts";
import { replicator } from "../../actors/replicator/index.ts";

const FAST = { intervalMs: 300, debounceMs: 600, repairGraceMs: 600_000 };
const SYS = { sysUser: TEST_AUTH.sysUser, sysPass: TEST_AUTH.sysPassword };

interface View {
  healthy: boolean;
  underReplicated: string[];
  conditions: Array<{ code: string; subject: string; message: string }>;
}

test("shared streams that fell back to R1 (three replicas could not be placed) show as degraded in the health view", async (t) => {
  const cluster = await startCluster(t, 3);
  const victim = cluster.servers[2]!;
  await victim.kill();
  await cluster.waitReady();
  const sys = await connectSys(t, cluster.urls);
  const removed = (await sys.request("$JS.API.SERVER.REMOVE", JSON.stringify({ peer: victim.name }), { timeout: 5000 })).json<{ success?: boolean }>();
  t.true(removed.success);
  const url = cluster.urls.join(",");
  // Shoal's first start: the cluster knows two servers
  await startShoal(t, { url });
  await runActor(t, url, replicator);
  await runActor(t, url, healthMonitor, { health: FAST, nats: SYS });
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const replicas = async (name: string) => (await jsm.streams.info(name)).config.num_replicas;
  t.is(await replicas("KV_shoal_buckets"), 1, "fell back to R1");
  t.is(await replicas("SHOAL_EVENTS"), 1);
  const view = async () => (await nc.request("shoal.v1.health", "", { timeout: 5000 })).json<View>();
  const degraded = await eventually(view, (v) => v.underReplicated.includes("KV_shoal_buckets") && v.underReplicated.includes("SHOAL_EVENTS"), {
    timeoutMs: 20_000,
    intervalMs: 300,
    what: "shared R1 streams reported under-replicated",
  });
  t.false(degraded.healthy);
  t.regex(degraded.conditions.find((c) => c.subject === "KV_shoal_buckets")!.message, /R1, meant to be R3/);
});

test("shared streams left at R1 are raised to R3 once the peers exist; new buckets default to the cluster's replica count", async (t) => {
  const cluster = await startCluster(t, 3);
  const url = cluster.urls.join(",");
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  // what a first boot with a peer missing left behind
  await new Kvm(jetstream(nc)).create("shoal_buckets", { history: 5, replicas: 1 });
  await new Kvm(jetstream(nc)).create("shoal_multipart", { history: 1, replicas: 1 });
  const { client } = await startShoal(t, { url });
  await runActor(t, url, replicator);
  await runActor(t, url, healthMonitor, { health: FAST, nats: SYS });
  const replicas = async (name: string) => (await jsm.streams.info(name)).config.num_replicas;
  await eventually(async () => [await replicas("KV_shoal_buckets"), await replicas("KV_shoal_multipart"), await replicas("SHOAL_EVENTS")], (r) => r.every((n) => n === 3), {
    timeoutMs: 30_000,
    intervalMs: 300,
    what: "shared streams raised to R3",
  });
  const view = async () => (await nc.request("shoal.v1.health", "", { timeout: 5000 })).json<View>();
  const v = await eventually(view, (x) => !x.underReplicated.some((s) => s.startsWith("KV_shoal_") || s === "SHOAL_EVENTS"), { timeoutMs: 20_000, intervalMs: 300, what: "no shared stream degraded" });
  t.deepEqual(v.underReplicated.filter((s) => s.startsWith("KV_shoal_") || s === "SHOAL_EVENTS"), []);
  // the registry still works after the raise
  const b = await client.createBucket("defaults");
  t.is(b.replicas, 3, "a bucket created without a count gets the cluster's");
  t.is(await replicas("OBJ_defaults"), 3);
  await client.put("defaults", "k", "v");
  t.is(new TextDecoder().decode(await client.getBytes("defaults", "k")), "v");
  t.deepEqual((await client.listBuckets()).map((x) => x.name), ["defaults"]);
});

test("without a health-monitor, running actors raise shared state left at R1 (SHOAL_EVENTS, which the storage actor never opens)", async (t) => {
  const cluster = await startCluster(t, 3);
  const url = cluster.urls.join(",");
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  // what a replicator's first start left behind while the meta group knew one server
  await jsm.streams.add({ name: "SHOAL_EVENTS", subjects: ["shoal.events.>"], num_replicas: 1, allow_direct: true });
  await startShoal(t, { url });
  const replicas = async () => (await jsm.streams.info("SHOAL_EVENTS")).config.num_replicas;
  t.is(await replicas(), 1);
  const started = Date.now();
  await eventually(replicas, (n) => n === 3, { timeoutMs: 40_000, intervalMs: 500, what: "SHOAL_EVENTS raised to R3 by the storage actor's runtime" });
  t.log(`raised ${Date.now() - started} ms after the storage actor started`);
});
