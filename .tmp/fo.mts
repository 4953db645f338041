import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster } from "../src/engine/cluster.ts";
import { ShoalClient } from "../src/client/index.ts";
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const cluster = await NatsCluster.start({ size: 3, dir: mkdtempSync("/tmp/fo-"), auth });
const url = cluster.urls.join(",");
const child = spawn(process.execPath, ["bin/shoal.js", "start", "--actors", "storage", "--nats", url, "--log-level", "debug"], { stdio: ["ignore", "inherit", "inherit"] });
await sleep(3000);
const shoal = await ShoalClient.connect({ servers: url }, { timeoutMs: 1000, deadlineMs: 30_000 });
await shoal.createBucket("failover", { replicas: 3 });
for (let i = 0; i < 20; i++) await shoal.put("failover", `warm${i}`, "x");
const nc = await connect({ servers: cluster.urls });
const jsm = await jetstreamManager(nc);
const leader = (await jsm.streams.info("OBJ_failover")).cluster?.leader!;
console.log("leader", leader, "meta", await cluster.metaLeader());
await nc.close();
console.log("kill at", Date.now() % 100000); await cluster.server(leader).kill();
const t0 = performance.now();
for (;;) {
  const t1 = performance.now();
  try { await shoal.put("failover", "after", "x"); console.log("ok at", Date.now() % 100000, (performance.now()-t0).toFixed(0)); break; }
  catch (e) { console.log("fail", (performance.now()-t0).toFixed(0), (performance.now()-t1).toFixed(0), String(e), String((e as any).cause)); await sleep(20); }
}
await shoal.close(); child.kill("SIGKILL"); await cluster.kill();
