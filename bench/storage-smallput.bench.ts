/**
 * The 4 KiB PUT through the storage actor, alone (issue 15, write half):
 * ShoalClient → storage actor (a child process, as deployed) → putBytes,
 * against stock @nats-io/obj putBlob and raw js.publish, at concurrency 16,
 * 500 keys overwritten, the paths in turns (median of BENCH_RUNS), plus the
 * CPU per PUT of the actor and of nats-server (/proc counters over a
 * Shoal-only run).
 *
 *   npm run bench -- storage-smallput     BENCH_QUICK=1 (300 calls a round) · BENCH_RUNS=n · BENCH_WARM=n (warm-up calls per path, 6000)
 *   BENCH_NEW_KEYS=1                      every PUT a new key (ingest) instead of 500 keys overwritten
 *   BENCH_CPU_PROF=<dir>                  the actor writes a V8 CPU profile (node --cpu-prof) there
 *   BENCH_COMPARE_ROOT=<checkout>         A/B: a second server with the storage actor of another checkout
 *                                         (e.g. a git worktree of an earlier commit, node_modules linked in),
 *                                         its PUT path taking turns with this one's ("shoal-b")
 */
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { opsMedianInTurns, opsPerSecond } from "./turns.ts";
import { NatsServer } from "../src/engine/server.ts";
import { ShoalClient } from "../src/client/index.ts";
import { KV, kvStream } from "../src/subjects/index.ts";
import { startStorageActor } from "./actor.ts";

const QUICK = process.env["BENCH_QUICK"] === "1";
const RUNS = Number(process.env["BENCH_RUNS"] ?? (QUICK ? 3 : 5));
const N = QUICK ? 300 : 1000;
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const root = new URL("../", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
const load = () => `load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`;
/** CPU seconds (user + system) a process has used, from /proc. */
const cpu = (pid: number | undefined) => {
  if (pid === undefined) return NaN;
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};

const srv = new NatsServer({ name: "sp", dir, auth, maxFileStore: "10GB" });
const compareRoot = process.env["BENCH_COMPARE_ROOT"];
// in an A/B each actor has a server of its own, and raw and stock a third (a burst of raw publishes
// leaves a server busy writing for a while: the path after it on the same server measured slower)
const srvBase = compareRoot ? new NatsServer({ name: "spbase", dir: mkdtempSync(join(tmpdir(), "shoal-bench-")), auth, maxFileStore: "10GB" }) : srv;
const srvB = compareRoot ? new NatsServer({ name: "spb", dir: mkdtempSync(join(tmpdir(), "shoal-bench-")), auth, maxFileStore: "10GB" }) : undefined;
const actors: ChildProcess[] = [];
let actor: ChildProcess | undefined;
let actorB: ChildProcess | undefined;

const startActor = (url: string, cwd: string, prof: string[]) => startStorageActor(url, { cwd, procs: actors, nodeArgs: prof });

try {
  await srv.start();
  const prof = process.env["BENCH_CPU_PROF"] ? ["--cpu-prof", `--cpu-prof-dir=${process.env["BENCH_CPU_PROF"]}`] : [];
  actor = await startActor(srv.url, root, prof);
  if (srvBase !== srv) await srvBase.start();
  const nc = await connect({ servers: srvBase.url });
  let shoalB: ShoalClient | undefined;
  if (srvB && compareRoot) {
    await srvB.start();
    actorB = await startActor(srvB.url, compareRoot, []);
    shoalB = await ShoalClient.connect({ servers: srvB.url }, { timeoutMs: 10_000 });
    await shoalB.createBucket("shoalsmall");
  }
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "RAWSMALL", subjects: ["rs.>"], allow_direct: true });
  const stock = await new Objm(nc).create("stocksmall");
  const shoal = await ShoalClient.connect({ servers: srv.url }, { timeoutMs: 10_000 });
  await shoal.createBucket("shoalsmall");
  const data = randomBytes(4096);
  const keys = 500;
  // BENCH_NEW_KEYS=1: every PUT names a key never written before (ingest), instead of
  // overwriting 500 keys (which the writer knows the revision of after the warm-up)
  const fresh = process.env["BENCH_NEW_KEYS"] === "1";
  let written = 0;
  const key = (i: number) => (fresh ? `n${written++}` : `k${i % keys}`);
  const before = load();
  const paths: Record<string, (i: number) => Promise<unknown>> = {
    raw: (i) => js.publish(`rs.${key(i)}`, data),
    shoal: (i) => shoal.put("shoalsmall", key(i), data),
    ...(shoalB ? { "shoal-b": (i: number) => shoalB.put("shoalsmall", key(i), data) } : {}),
    stock: (i) => stock.putBlob({ name: key(i) }, data),
  };
  // Warm every path to its steady rate first. The storage actor, a process of its own, reaches
  // its steady CPU per PUT only after thousands of PUTs (measured 2026-12-03: 0.65–0.88 ms in its
  // first 1000, 0.39–0.57 in the second, 0.21–0.26 from about the sixth on), and a long-running
  // actor is the one users meet; the stock client and raw get the same warm-up (stock also
  // gains: 1.3–1.9k → 2.0–2.5k PUTs/s). BENCH_WARM sets it (the earlier default was 200).
  const warm = Number(process.env["BENCH_WARM"] ?? (QUICK ? 1000 : 6000));
  const r = await opsMedianInTurns(paths, { n: N, warm, runs: RUNS, concurrency: 16 });
  // CPU per Shoal PUT: one more round of each Shoal path alone (shoal, shoal-b, shoal, shoal-b, … in
  // turns of 500), /proc counters before and after; and the JetStream API requests its actor makes
  // per PUT (Direct Gets, the settings KV's among them)
  const settingsStream = kvStream(KV.bucketSettings);
  const cpuRounds = async (name: string, client: ShoalClient, actorPid: number | undefined, serverPid: number | undefined) => {
    const acc = { n: 0, actor: 0, server: 0, client: 0, api: 0, settings: 0, secs: 0 };
    return {
      acc,
      round: async (m: number) => {
        const mon = client.nc.subscribe("$JS.API.>", {
          callback: (_e, msg) => {
            acc.api++;
            if (msg.subject.includes(settingsStream)) acc.settings++;
          },
        });
        await client.nc.flush();
        const a0 = cpu(actorPid);
        const s0 = cpu(serverPid);
        const t0 = process.cpuUsage();
        const w0 = performance.now();
        await opsPerSecond(m, 16, (i) => client.put("shoalsmall", key(i), data));
        acc.secs += (performance.now() - w0) / 1000;
        const tc = process.cpuUsage(t0);
        acc.actor += cpu(actorPid) - a0;
        acc.server += cpu(serverPid) - s0;
        acc.client += (tc.user + tc.system) / 1e6;
        acc.n += m;
        mon.unsubscribe();
      },
      line: () => {
        const ms = (x: number) => ((x * 1000) / acc.n).toFixed(3);
        return `| ${name} | ${(acc.n / acc.secs).toFixed(0)} | ${ms(acc.actor)} | ${ms(acc.server)} | ${ms(acc.client)} | ${(acc.api / acc.n).toFixed(2)} | ${(acc.settings / acc.n).toFixed(2)} |`;
      },
    };
  };
  const meters = [await cpuRounds("shoal", shoal, actor.pid, srv.pid)];
  if (shoalB) meters.push(await cpuRounds("shoal-b", shoalB, actorB?.pid, srvB?.pid));
  for (let i = 0; i < 4; i++) for (const m of meters) await m.round(N / 2);
  if (compareRoot) console.log(`\nshoal-b: the storage actor of ${compareRoot}; shoal, shoal-b, and raw + stock each on a server of their own`);
  console.log(`\n4 KiB PUT, R1, concurrency 16, ${fresh ? "every key new" : `${keys} keys overwritten`}, median of ${RUNS} rounds of ${N} in turns (${before} → ${load()})\n`);
  console.log("| path | ops/s | vs raw | vs stock |\n|---|---|---|---|");
  for (const [k, v] of Object.entries(r)) console.log(`| ${k} | ${v.toFixed(0)} | ${(v / r["raw"]!).toFixed(2)} | ${(v / r["stock"]!).toFixed(2)} |`);
  console.log(`\nCPU per PUT, 4 rounds of ${N / 2} per Shoal path in turns (${load()})\n`);
  console.log("| path | ops/s | storage actor ms | nats-server ms | client ms | JetStream API requests | of them settings-KV reads |\n|---|---|---|---|---|---|---|");
  for (const m of meters) console.log(m.line());
  await shoal.close();
  await shoalB?.close();
  await nc.close();
} finally {
  // SIGTERM: an actor drains and exits (and writes its CPU profile, if asked)
  await Promise.all(
    actors.map(async (a) => {
      if (a.exitCode !== null) return;
      const exited = new Promise((r) => a.once("exit", r));
      a.kill("SIGTERM");
      await Promise.race([exited, sleep(15_000)]);
      if (a.exitCode === null) a.kill("SIGKILL");
    }),
  );
  for (const s of new Set([srv, srvBase, srvB])) await s?.stop().catch(() => s.kill());
  rmSync(dir, { recursive: true, force: true });
}
