import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { runActor, startShoal } from "../helpers/actors.ts";
import { TEST_AUTH, connectTo, startCluster, startServer } from "../helpers/nats.ts";
import { healthMonitor } from "../../actors/health-monitor/index.ts";
import { storage } from "../../actors/storage/index.ts";
import { registry } from "../../src/metrics/index.ts";
import { parseMetrics, value } from "../helpers/prom.ts";
import { healthSubject } from "../../src/subjects/index.ts";
// serial: both tests read the process-wide metrics registry the health-monitors write

const root = new URL("../../", import.meta.url).pathname;
const FAST = { intervalMs: 300, debounceMs: 1000, repairGraceMs: 2500 };
const SYS = { sysUser: TEST_AUTH.sysUser, sysPass: TEST_AUTH.sysPassword };

interface Alert {
  id: string;
  code: string;
  state: "raised" | "resolved";
  subject: string;
}

/** Every alert event in SHOAL_ALERTS so far (Direct Get: creating a consumer is unreliable on 2.9.10 while a server is down). */
const managers = new WeakMap<NatsConnection, JetStreamManager>();
async function alertEvents(nc: NatsConnection): Promise<Alert[]> {
  // one manager per connection, made while the cluster is whole (making one checks the JetStream API)
  let jsm = managers.get(nc);
  if (!jsm) managers.set(nc, (jsm = await jetstreamManager(nc)));
  const out: Alert[] = [];
  for (let seq = 1; ; ) {
    const m = await jsm.direct.getMessage("SHOAL_ALERTS", { seq, next_by_subj: "shoal.alerts.>" }).catch(() => null);
    if (!m) break;
    out.push(m.json<Alert>());
    seq = m.seq + 1;
  }
  return out;
}

/** The health view as one health-monitor serves it (shoal.v1.health). */
async function healthView(nc: NatsConnection): Promise<{ alerts: Array<{ code: string; subject: string }> }> {
  return (await nc.request(healthSubject(), "", { timeout: 2000 })).json();
}

let debugState: unknown;
async function waitFor(t: ExecutionContext, what: string, ms: number, fn: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn().catch(() => false)) return Date.now() - t0;
    await sleep(200);
  }
  if (process.env["SHOAL_DEBUG_HEALTH"]) console.error("DBG", what, JSON.stringify(debugState));
  t.fail(`${what}: not within ${ms} ms`);
  return ms;
}

function status(url: string): Promise<{ code: number | null; json: { healthy: boolean; servers: Array<{ name: string; up: boolean }>; underReplicated: string[]; actors: Array<{ kind: string; live: number }>; alerts: Array<{ code: string }> } }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/shoal.js", "status", "--json", "--nats", url], { cwd: root, timeout: 30_000 });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.on("close", (code) => resolve({ code, json: JSON.parse(out || "{}") }));
  });
}

test.serial("SIGKILL a server: server-down and stream-under-replicated are raised in the health view within 10 s and resolved within 10 s of its restart; their events are published each exactly once (two health-monitors); a repair is requested; shoal status reflects it", async (t) => {
  const cluster = await startCluster(t, 3);
  const url = cluster.urls.join(",");
  const { client } = await startShoal(t, { url });
  await runActor(t, url, healthMonitor, { health: FAST, nats: SYS, ...(process.env["SHOAL_DEBUG_HEALTH"] ? { logger: (await import("../../src/log.ts")).createLogger({ level: "info" }) } : {}) });
  await runActor(t, url, healthMonitor, { health: FAST, nats: SYS, ...(process.env["SHOAL_DEBUG_HEALTH"] ? { logger: (await import("../../src/log.ts")).createLogger({ level: "info" }) } : {}) });
  await client.createBucket("watched", { replicas: 3 });
  await client.put("watched", "k", "v");
  const nc = await connectTo(t, url);
  const repairs: string[] = [];
  nc.subscribe("shoal.ctl.rebalancer.repair", { callback: (_e, m) => void repairs.push(m.json<{ server: string }>().server) });
  await waitFor(t, "healthy at start", 15_000, async () => (await status(url)).code === 0);

  await alertEvents(nc);
  const victim = cluster.servers.find((s) => !url.startsWith(s.url))!; // not the first URL the actors prefer
  await victim.kill();
  if (process.env["SHOAL_DEBUG_HEALTH"]) console.error("DBG killed", victim.name, Date.now());
  // Raised = shown: the health view (shoal.v1.health, shoal status) and the
  // metrics, within 10 s. The durable alert events follow once SHOAL_ALERTS
  // and KV shoal_health have leaders: when the victim led them, nats-server
  // elects new ones only after its election timeout (4–9 s; more on a loaded
  // machine), so the events get their own, wider bound below.
  const raisedIn = await waitFor(t, "server-down and stream-under-replicated raised in the health view", 10_000, async () => {
    const v = await healthView(nc);
    debugState = v;
    return v.alerts.some((a) => a.code === "server-down" && a.subject === victim.name) && v.alerts.some((a) => a.code === "stream-under-replicated" && a.subject === "OBJ_watched");
  });
  t.log(`raised ${raisedIn} ms after SIGKILL (debounce ${FAST.debounceMs} ms)`);
  const publishedIn = await waitFor(t, "server-down and stream-under-replicated events published", 30_000, async () => {
    const ev = await alertEvents(nc);
    debugState = ev;
    return ev.some((e) => e.state === "raised" && e.code === "server-down" && e.subject === victim.name) && ev.some((e) => e.state === "raised" && e.code === "stream-under-replicated" && e.subject === "OBJ_watched");
  });
  t.log(`events published ${raisedIn + publishedIn} ms after SIGKILL`);
  const down = await status(url);
  t.is(down.code, 1);
  t.false(down.json.servers.find((s) => s.name === victim.name)!.up);
  t.true(down.json.underReplicated.includes("OBJ_watched"));
  t.true(down.json.alerts.some((a) => a.code === "server-down"));
  // the health-monitors run in this process: its /metrics shows the same
  const m = await parseMetrics(await registry.metrics());
  t.is(value(m, "shoal_server_up", { server: victim.name }), 0);
  t.is(value(m, "shoal_alerts_open", { code: "server-down", severity: "critical" }), 1);
  t.is(value(m, "shoal_stream_healthy", { stream: "OBJ_watched" }), 0);
  t.true(value(m, "shoal_stream_replicas", { stream: "OBJ_watched", state: "current" }) < 3);
  t.is(value(m, "shoal_stream_replicas", { stream: "OBJ_watched", state: "configured" }), 3);
  t.is(value(m, "shoal_cluster_healthy"), 0);
  await waitFor(t, "repair requested", 10_000, async () => repairs.includes(victim.name));

  await victim.restart();
  const resolvedIn = await waitFor(t, "both resolved in the health view", 10_000, async () => {
    const v = await healthView(nc);
    return !v.alerts.some((a) => a.code === "server-down" || (a.code === "stream-under-replicated" && a.subject === "OBJ_watched"));
  });
  t.log(`resolved ${resolvedIn} ms after restart`);
  await waitFor(t, "both resolutions published", 20_000, async () => {
    const ev = await alertEvents(nc);
    return ev.some((e) => e.state === "resolved" && e.code === "server-down") && ev.some((e) => e.state === "resolved" && e.code === "stream-under-replicated" && e.subject === "OBJ_watched");
  });
  await sleep(2 * FAST.intervalMs);
  const ev = await alertEvents(nc);
  for (const id of [`server-down.${victim.name}`, "stream-under-replicated.OBJ_watched"]) {
    t.is(ev.filter((e) => e.id === id && e.state === "raised").length, 1, `${id} raised once`);
    t.is(ev.filter((e) => e.id === id && e.state === "resolved").length, 1, `${id} resolved once`);
  }
  t.is(repairs.filter((s) => s === victim.name).length, 1, "one repair request per outage");
  await waitFor(t, "healthy again", 10_000, async () => (await status(url)).code === 0);
  // both monitors write this process's gauges, each from its own last look:
  // the one that did not answer the status may be a look behind
  await waitFor(t, "metrics healthy again", 5000, async () => value(await parseMetrics(await registry.metrics()), "shoal_cluster_healthy") === 1);
  const m2 = await parseMetrics(await registry.metrics());
  t.is(value(m2, "shoal_server_up", { server: victim.name }), 1);
  t.is(value(m2, "shoal_alerts_open", { code: "server-down", severity: "critical" }), 0);
  t.is(value(m2, "shoal_stream_replicas", { stream: "OBJ_watched", state: "current" }), 3);
  t.is(value(m2, "shoal_cluster_healthy"), 1);
});

test.serial("stop every storage actor: actor-kind-missing is raised, and resolved once one returns; a health-monitor restart does not raise it again", async (t) => {
  const srv = await startServer(t);
  const first = await runActor(t, srv.url, storage);
  let hm = await runActor(t, srv.url, healthMonitor, { health: FAST, nats: SYS });
  const nc = await connectTo(t, srv.url);
  await waitFor(t, "storage seen", 10_000, async () => (await status(srv.url)).json.actors?.some((a) => a.kind === "storage" && a.live === 1) ?? false);
  await first.stop(1000);
  await waitFor(t, "actor-kind-missing raised", 10_000, async () => (await alertEvents(nc)).some((e) => e.code === "actor-kind-missing" && e.subject === "storage" && e.state === "raised"));
  const missing = await status(srv.url);
  t.is(missing.code, 1);
  t.is(missing.json.actors.find((a) => a.kind === "storage")?.live, 0);
  t.true(missing.json.alerts.some((a) => a.code === "actor-kind-missing"));
  const m = await parseMetrics(await registry.metrics());
  t.is(value(m, "shoal_cluster_actor_instances", { kind: "storage" }), 0);
  t.is(value(m, "shoal_alerts_open", { code: "actor-kind-missing", severity: "critical" }), 1);
  // the health-monitor restarts while the alert is open: no second raise
  await hm.stop(1000);
  hm = await runActor(t, srv.url, healthMonitor, { health: FAST, nats: SYS });
  await sleep(FAST.debounceMs + 1000);
  await runActor(t, srv.url, storage);
  await waitFor(t, "actor-kind-missing resolved", 10_000, async () => (await alertEvents(nc)).some((e) => e.code === "actor-kind-missing" && e.state === "resolved"));
  const ev = (await alertEvents(nc)).filter((e) => e.code === "actor-kind-missing");
  t.deepEqual(ev.map((e) => e.state), ["raised", "resolved"]);
  await waitFor(t, "healthy", 10_000, async () => (await status(srv.url)).code === 0);
  t.is((await status(srv.url)).json.actors.find((a) => a.kind === "storage")?.live, 1);
});
