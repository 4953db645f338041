import { mkdtempSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, jetstream } from "@nats-io/jetstream";
import { NatsCluster } from "../src/engine/cluster.ts";
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
for (const meta of [false, true]) {
const cluster = await NatsCluster.start({ size: 3, dir: mkdtempSync("/tmp/fo-"), auth });
const nc = await connect({ servers: cluster.urls });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: "S", subjects: ["s.>"], num_replicas: 3 });
const js = jetstream(nc);
for (let i = 0; i < 10; i++) await js.publish("s.x", "x");
let leader = "";
for (let i = 0; i < 20; i++) { leader = (await jsm.streams.info("S")).cluster?.leader!; const m = await cluster.metaLeader(); if ((leader === m) === meta) break; await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.S", "", { timeout: 5000 }).catch(() => 0); await sleep(1000); }
console.log("leader", leader, "meta", await cluster.metaLeader(), "client on", nc.info?.server_name);
await cluster.server(leader).kill();
const t0 = performance.now();
for (;;) {
  try { await js.publish("s.x", "x", { timeout: 250 }); console.log("raw ok at", (performance.now()-t0).toFixed(0)); break; }
  catch (e) { await sleep(10); }
}
await nc.close(); await cluster.kill();
}
