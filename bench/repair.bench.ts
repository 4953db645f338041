/**
 * Repair time: one R3 bucket of N GiB back to R3 after a server loss.
 *
 *   npm run bench -- repair
 *   SHOAL_BENCH_GIB=1 (bucket size), SHOAL_BENCH_GRACE_MS=2000, SHOAL_BENCH_RUNS=1
 *   SHOAL_BENCH_KILL=follower|leader (default follower)
 *
 * 4 servers, a storage actor and a rebalancer (grace SHOAL_BENCH_GRACE_MS).
 * The bucket is filled through the SDK with 16 MiB objects, and the bench
 * waits until its 3 replicas are current. Then a server holding a replica
 * (a follower by default, so no election is timed) is SIGKILLed, and the
 * timer runs until the bucket's stream again has 3 replicas, none on the
 * killed server, all current: the rebalancer's repair (after the grace) and
 * JetStream's catch-up of the new replica. Never part of `npm test`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsCluster } from "../src/engine/cluster.ts";
import { ActorInstance } from "../src/runtime/index.ts";
import { buildConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { ShoalClient } from "../src/client/index.ts";
import { objectStoreStream } from "../src/subjects/index.ts";
import { storage } from "../actors/storage/index.ts";
import { makeRebalancer } from "../actors/rebalancer/index.ts";

const AUTH = { sysUser: "sys", sysPassword: "sys", appUser: "shoal", appPassword: "shoal" };
const GIB = Number(process.env["SHOAL_BENCH_GIB"] ?? 1);
const GRACE = Number(process.env["SHOAL_BENCH_GRACE_MS"] ?? 2000);
const RUNS = Number(process.env["SHOAL_BENCH_RUNS"] ?? 1);
const KILL = process.env["SHOAL_BENCH_KILL"] === "leader" ? "leader" : "follower";
const OBJECT = 16 << 20;
const BUCKET = "repair";

async function once() {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bench-repair-"));
  const cluster = await NatsCluster.start({ size: 4, dir, auth: AUTH, server: { maxFileStore: `${Math.ceil(GIB * 2 + 2)}G` } });
  const actors: ActorInstance[] = [];
  try {
    const url = cluster.urls.join(",");
    const log = createLogger({ level: "silent" });
    const nats = buildConfig({ nats: { servers: url, sysUser: AUTH.sysUser, sysPass: AUTH.sysPassword } }).nats;
    const health = buildConfig({ health: { repairGraceMs: GRACE } }).health;
    for (const def of [storage, makeRebalancer({ intervalMs: 500 })]) {
      const a = new ActorInstance(def, { nats, runtime: buildConfig({}).runtime, health, logger: log });
      await a.start();
      actors.push(a);
    }
    const client = await ShoalClient.connect({ servers: url }, { deadlineMs: 120_000 });
    const nc = await connect({ servers: url, user: AUTH.appUser, pass: AUTH.appPassword });
    const jsm = await jetstreamManager(nc, { timeout: 5000 });
    await client.createBucket(BUCKET, { replicas: 3 });
    const body = randomBytes(OBJECT);
    const count = Math.max(1, Math.round((GIB * 2 ** 30) / OBJECT));
    const w0 = Date.now();
    let next = 0;
    const writer = async () => {
      for (let i = next++; i < count; i = next++) {
        for (let a = 1; ; a++) {
          const ok = await client.put(BUCKET, `o${i}`, body).then(() => true, (e: unknown) => (a >= 5 ? Promise.reject(e) : false));
          if (ok) break;
          await sleep(1000);
        }
      }
    };
    await Promise.all([writer(), writer()]);
    const writeS = (Date.now() - w0) / 1000;
    const stream = objectStoreStream(BUCKET);
    const whole = async (victim?: string) => {
      const si = await jsm.streams.info(stream).catch(() => null);
      const c = si?.cluster;
      if (!si || !c?.leader || c.leader === victim) return null;
      const reps = c.replicas ?? [];
      return reps.length === 2 && reps.every((r) => r.current && !r.offline && r.name !== victim) ? si : null;
    };
    let si = await whole();
    for (const t0 = Date.now(); !si; si = await whole()) {
      if (Date.now() - t0 > 600_000) throw new Error("replicas not current 10 min after the writes");
      await sleep(500);
    }
    const bytes = si.state.bytes;
    const victimName = KILL === "leader" ? si.cluster!.leader! : si.cluster!.replicas![0]!.name;
    const victim = cluster.servers.find((s) => s.name === victimName)!;
    const k0 = Date.now();
    await victim.kill();
    for (;;) {
      if (await whole(victimName)) break;
      if (Date.now() - k0 > 900_000) throw new Error("repair did not finish in 15 min");
      await sleep(250);
    }
    const repairMs = Date.now() - k0;
    await client.close();
    await nc.close();
    return { gib: (bytes / 2 ** 30).toFixed(2), writeS: writeS.toFixed(1), killed: KILL, repairS: (repairMs / 1000).toFixed(1), afterGraceS: ((repairMs - GRACE) / 1000).toFixed(1), mibps: ((bytes / 2 ** 20) / Math.max(0.001, (repairMs - GRACE) / 1000)).toFixed(1) };
  } finally {
    for (const a of actors) await a.stop(1000).catch(() => undefined);
    await cluster.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
for (let r = 0; r < RUNS; r++) rows.push(await once());
console.log(`\nRepair: one R3 bucket of ${GIB} GiB (16 MiB objects), 4 servers, SIGKILL of a ${KILL} replica, grace ${GRACE / 1000} s`);
console.log("| stream bytes | filled in | back to R3 after SIGKILL | of which after the grace | catch-up rate |");
console.log("|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.gib} GiB | ${r.writeS} s | ${r.repairS} s | ${r.afterGraceS} s | ${r.mibps} MiB/s |`);
process.exit(0);
