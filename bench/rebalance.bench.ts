/**
 * Rebalancer: foreground throughput while replicas move, and repair time.
 *
 *   SHOAL_NATS_SERVER=… node --import=tsx bench/rebalance.bench.ts
 *   SHOAL_BENCH_MIB=256 (data per run), SHOAL_BENCH_PACES=32,0 (MiB/s; 0 = unpaced)
 *
 * For each pace: 3 servers, 4 R3 buckets holding SHOAL_BENCH_MIB in all, a
 * foreground writer (64 KiB puts, 2 in flight) measured for 8 s; then a 4th
 * server joins and the rebalancer moves replicas onto it while the writer
 * runs; then 8 s more after the moves. Foreground during moves is reported
 * against the mean of before and after (the same run, so drift hits both).
 * Then SIGKILL of a server holding every bucket, a 2 s grace, and the time
 * until every bucket is back to R3, all replicas current.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { NatsCluster } from "../src/engine/cluster.ts";
import { NatsServer } from "../src/engine/server.ts";
import { freePort } from "../src/engine/ports.ts";
import { ActorInstance } from "../src/runtime/index.ts";
import { buildConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { ShoalClient } from "../src/client/index.ts";
import { storage } from "../actors/storage/index.ts";
import { isShoalStream, makeRebalancer } from "../actors/rebalancer/index.ts";

const AUTH = { sysUser: "sys", sysPassword: "sys", appUser: "shoal", appPassword: "shoal" };
const MIB = Number(process.env["SHOAL_BENCH_MIB"] ?? 256);
const PACES = (process.env["SHOAL_BENCH_PACES"] ?? "32,0").split(",").map(Number);
const GRACE = 2000;

async function once(pace: number) {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bench-rebal-"));
  const cluster = await NatsCluster.start({ size: 3, dir, auth: AUTH });
  const extra: NatsServer[] = [];
  const actors: ActorInstance[] = [];
  try {
    const url = cluster.urls.join(",");
    const log = createLogger({ level: "silent" });
    const runtime = buildConfig({}).runtime;
    const nats = buildConfig({ nats: { servers: url, sysUser: AUTH.sysUser, sysPass: AUTH.sysPassword } }).nats;
    const health = buildConfig({ health: { repairGraceMs: GRACE } }).health;
    for (const def of [storage, makeRebalancer({ intervalMs: 500, policy: { maxBytesPerSec: pace > 0 ? pace * 2 ** 20 : 1e12 } })]) {
      const a = new ActorInstance(def, { nats, runtime, health, logger: log });
      await a.start();
      actors.push(a);
    }
    const client = await ShoalClient.connect({ servers: url });
    const nc = await connect({ servers: url });
    const jsm = await jetstreamManager(nc, { timeout: 3000 });
    const per = Math.max(1, Math.round(MIB / 4 / 2));
    for (let b = 0; b < 4; b++) {
      await client.createBucket(`bench${b}`, { replicas: 3 });
      for (let i = 0; i < per; i++) {
        // the setup retries (a loaded machine times requests out); only the timed phases count failures
        for (let a = 1; ; a++) {
          const ok = await client.put(`bench${b}`, `o${i}`, randomBytes(2 << 20)).then(() => true, (e: unknown) => (a >= 5 ? Promise.reject(e) : false));
          if (ok) break;
          await sleep(1000);
        }
      }
    }
    await client.createBucket("fgw", { replicas: 3 });
    const log2: Array<{ at: number; n: number }> = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        await client.put("fgw", `w${w}/${i % 64}`, randomBytes(64 << 10)).then(
          () => log2.push({ at: Date.now(), n: 64 << 10 }),
          () => undefined,
        );
      }
    };
    const workers = [worker(0), worker(1)];
    const rate = (a: number, b: number) => (log2.filter((e) => e.at >= a && e.at < b).reduce((x, e) => x + e.n, 0) / (b - a)) * 1000;
    const streams = async () => {
      const out = [];
      for await (const si of jsm.streams.list()) if (isShoalStream(si.config.name)) out.push(si);
      return out;
    };
    await sleep(2000);
    const b0 = Date.now();
    await sleep(8000);
    const before = rate(b0, Date.now());
    const s4 = new NatsServer({ name: "n4", dir: join(dir, "n4"), auth: AUTH, cluster: { name: cluster.name, port: await freePort(), routes: cluster.servers.map((s) => s.clusterUrl) } });
    extra.push(s4);
    const m0 = Date.now();
    await s4.start();
    // moves are done when n4 holds bucket replicas and the rebalancer is idle
    for (let i = 0; ; i++) {
      const st = await client.rebalance.status().catch(() => null);
      const on4 = (await streams()).filter((s) => s.config.name.startsWith("OBJ_bench") && s.cluster?.replicas?.some((r) => r.name === "n4") || s.cluster?.leader === "n4").length;
      if (st?.state === "idle" && on4 >= 3) break;
      if (Date.now() - m0 > 600_000) throw new Error("moves did not finish in 10 min");
      await sleep(500);
    }
    const m1 = Date.now();
    const during = rate(m0, m1);
    await sleep(8000);
    const after = rate(m1, Date.now());
    const movedBytes = (await client.rebalance.status()).bytesDone;
    // repair: SIGKILL a server that holds every bench bucket
    const all = await streams();
    const holders = ["n1", "n2", "n3", "n4"].filter((n) => all.filter((s) => s.config.name.startsWith("OBJ_bench")).every((s) => s.cluster?.leader === n || s.cluster?.replicas?.some((r) => r.name === n)));
    const victimName = holders.find((n) => n !== "n1") ?? "n2";
    const victim = [...cluster.servers, ...extra].find((s) => s.name === victimName)!;
    const k0 = Date.now();
    await victim.kill();
    for (;;) {
      const st = (await streams().catch(() => [])).filter((s) => s.config.name.startsWith("OBJ_bench"));
      const whole = st.length === 4 && st.every((s) => s.cluster?.leader && s.cluster.leader !== victimName && (s.cluster.replicas ?? []).length === 2 && (s.cluster.replicas ?? []).every((r) => r.current && !r.offline && r.name !== victimName));
      if (whole) break;
      if (Date.now() - k0 > 600_000) throw new Error("repair did not finish in 10 min");
      await sleep(250);
    }
    const repairMs = Date.now() - k0;
    stop = true;
    await Promise.all(workers);
    await client.close();
    await nc.close();
    const mib = (x: number) => (x / 2 ** 20).toFixed(2);
    return { pace, before: mib(before), during: mib(during), after: mib(after), ratio: (during / ((before + after) / 2)).toFixed(2), moveS: ((m1 - m0) / 1000).toFixed(1), moved: mib(movedBytes), repairS: (repairMs / 1000).toFixed(1), repairAfterGraceS: ((repairMs - GRACE) / 1000).toFixed(1) };
  } finally {
    for (const a of actors) await a.stop(1000).catch(() => undefined);
    for (const s of extra) await s.kill();
    await cluster.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows = [];
for (const p of PACES) rows.push(await once(p));
console.log(`\nRebalancer, ${MIB} MiB in 4 R3 buckets, 3 → 4 servers; foreground = 64 KiB puts, 2 in flight (MiB/s)`);
console.log("| pace | foreground before | during moves | after | during / mean(before, after) | moves took | moved | repair after SIGKILL (grace 2 s) | of which after the grace |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.pace ? `${r.pace} MiB/s` : "unpaced"} | ${r.before} | ${r.during} | ${r.after} | ${r.ratio} | ${r.moveS} s | ${r.moved} MiB | ${r.repairS} s | ${r.repairAfterGraceS} s |`);
process.exit(0);
