/**
 * Shoal's NATS API (SDK → storage actor → JetStream) against the stock
 * @nats-io/obj client and raw JetStream, measured in the same run on the same
 * servers. The storage actor runs in its own process (`shoal start`), so its
 * peak RSS is its own.
 *
 *   npm run bench -- storage          (BENCH_QUICK=1 for a short run)
 */
import { dirMaker } from "./lifetime.ts";
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { mbpsInTurns, opsInTurns, opsMedianInTurns, opsPerSecond } from "./turns.ts";
import { NatsServer } from "../src/engine/server.ts";
import { NatsCluster } from "../src/engine/cluster.ts";
import { ShoalClient } from "../src/client/index.ts";
import { ingest } from "../src/jet/index.ts";
import { startStorageActor } from "./actor.ts";
import { dropStockConsumers, roomForStockGets } from "./stock.ts";

const QUICK = process.env["BENCH_QUICK"] === "1";
const MiB = 1024 * 1024;
const BIG = (QUICK ? 16 : 64) * MiB;
const RUNS = Number(process.env["BENCH_RUNS"] ?? (QUICK ? 1 : 3));
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const root = new URL("../", import.meta.url).pathname;
const dirs: string[] = [];
/** Servers and clusters started outside failover's own try/finally; stopped at the end whatever happened. */
const servers: Array<{ stop(): Promise<void> }> = [];
const procs: ChildProcess[] = [];
const tmp = dirMaker(dirs);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const body = randomBytes(BIG);
async function* slices(buf: Buffer, size = 256 * 1024) {
  for (let o = 0; o < buf.length; o += size) yield buf.subarray(o, o + size);
}
function webStream(buf: Buffer): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= buf.length) return c.close();
      c.enqueue(buf.subarray(o, (o += 256 * 1024)));
    },
  });
}
/** Starts `shoal start --actors storage` against `url`; resolves when it serves. */
const startActor = (url: string) => startStorageActor(url, { cwd: root, procs });
const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

async function throughput(label: string, nc: NatsConnection, shoal: ShoalClient, replicas: 1 | 3) {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc, { timeout: 20_000 });
  const rows: string[] = [];
  // raw JetStream: 1 MiB messages, 16 in flight; ordered consumer read
  await jsm.streams.add({ name: `RAW${replicas}`, subjects: [`raw${replicas}.>`], num_replicas: replicas, allow_direct: true, allow_batched: true });
  const os = await new Objm(nc).create(`stock${replicas}`, { replicas });
  await roomForStockGets(jsm, `stock${replicas}`);
  await shoal.createBucket(`shoal${replicas}`, { replicas });
  // bench/turns.ts: every path warmed up once, then the paths in turns
  const sizes = { runs: RUNS, bytes: BIG };
  const puts = await mbpsInTurns(
    {
      raw: async (i) => {
        const inflight: Promise<unknown>[] = [];
        for (let o = 0; o < BIG; o += MiB) {
          inflight.push(js.publish(`raw${replicas}.${i}`, body.subarray(o, o + MiB)));
          if (inflight.length >= 16) await inflight.shift();
        }
        await Promise.all(inflight);
      },
      // raw fast ingest (nats-server 2.14 allow_batched), 1 MiB messages, src/jet's defaults
      rawIngest: async (i) => void (await ingest(nc, `raw${replicas}.f${i}`, (function* () { for (let o = 0; o < BIG; o += MiB) yield body.subarray(o, o + MiB); })(), { timeoutMs: 30_000 })),
      stock: async (i) => void (await os.put({ name: `o${i}` }, webStream(body))),
      shoal: async (i) => void (await shoal.put(`shoal${replicas}`, `o${i}`, slices(body))),
      // the ETag from the SHA-256: no MD5 computed (ClientOptions.etag, docs/api.md)
      shoalSha: async (i) => void (await shoal.put(`shoal${replicas}`, `s${i}`, slices(body), { etag: "sha256" })),
    },
    sizes,
  );
  const gets = await mbpsInTurns(
    {
      raw: async () => {
        const c = await js.consumers.get(`RAW${replicas}`, { filter_subjects: `raw${replicas}.0`, deliver_policy: DeliverPolicy.All });
        let got = 0;
        // at most 16 MiB pulled ahead: the default (100 messages, here 100 MiB) exceeds
        // nats-server's 64 MiB max_pending for a client, and a reader that drains
        // slower than the server sends is cut off as a slow consumer and waits for ever
        for await (const m of await c.consume({ max_bytes: 16 * MiB })) if ((got += m.data.length) >= BIG) break;
      },
      stock: async () => void (await os.getBlob("o0")),
      shoal: async () => {
        const r = await shoal.get(`shoal${replicas}`, "o0");
        for await (const _ of r.body) void _;
      },
    },
    sizes,
  );
  // the PUT baseline is the faster raw path of this run (issue 15)
  const [rawPut, stockPut, shoalPut, rawGet, stockGet, shoalGet] = [Math.max(puts.raw, puts.rawIngest), puts.stock, puts.shoal, gets.raw, gets.stock, gets.shoal];
  const row = (name: string, p: number, g: number) => rows.push(`| ${label} | ${name} | ${p.toFixed(0)} | ${g.toFixed(0)} | ${(p / rawPut).toFixed(2)} | ${(g / rawGet).toFixed(2)} |`);
  row("raw JetStream (pipelined 1 MiB publishes / ordered consumer)", puts.raw, rawGet);
  rows.push(`| ${label} | raw JetStream fast ingest, 1 MiB messages (PUT only) | ${puts.rawIngest.toFixed(0)} | — | ${(puts.rawIngest / rawPut).toFixed(2)} | — |`);
  row("stock @nats-io/obj put / getBlob", stockPut, stockGet);
  row("**Shoal NATS API (SDK ⇄ stream, storage actor commits)**", shoalPut, shoalGet);
  rows.push(`| ${label} | Shoal NATS API, \`etag: "sha256"\` (ETag from the SHA-256, no MD5; PUT only) | ${puts.shoalSha.toFixed(0)} | — | ${(puts.shoalSha / rawPut).toFixed(2)} | — |`);
  return { rows, shoalPut, shoalGet, stockPut, stockGet };
}

async function smallOps(nc: NatsConnection, shoal: ShoalClient) {
  const os = await new Objm(nc).create("stocksmall");
  const jsm = await jetstreamManager(nc);
  await roomForStockGets(jsm, "stocksmall");
  await shoal.createBucket("small");
  const data = randomBytes(4096);
  // warm-up calls per path: the storage actor reaches its steady CPU per request only after
  // thousands (bench/storage-smallput.bench.ts); BENCH_WARM sets it
  const o = { n: QUICK ? 300 : 2000, warm: Number(process.env["BENCH_WARM"] ?? (QUICK ? 200 : 6000)) };
  const rows: string[] = [];
  for (const concurrency of [1, 16]) {
    // bench/turns.ts: warmed up, in turns; keys are overwritten (500 of them), for both
    const p = await opsInTurns({ shoal: (i) => shoal.put("small", `k${i % 500}`, data), stock: (i) => os.putBlob({ name: `k${i % 500}` }, data) }, { ...o, concurrency });
    // stock leaves a consumer behind per get (bench/stock.ts: its stream has room for them);
    // its rate counts only the gets that returned the object, and the row says how many failed
    let ok = 0;
    let failed = 0;
    const stockGet = (i: number) => os.getBlob(`k${i % 500}`).then((b) => void (b?.byteLength === 4096 ? ok++ : failed++), () => void failed++);
    // rounds in turns; after each stock round its consumers are deleted, so every round starts
    // without the ones earlier rounds left (bench/stock.ts) — the baseline at its best
    const g = await opsMedianInTurns(
      { shoal: (i) => shoal.getBytes("small", `k${i % 500}`), stock: stockGet },
      { n: Math.ceil(o.n / RUNS), concurrency, warm: o.warm, runs: RUNS, after: (k) => (k === "stock" ? dropStockConsumers(jsm, "stocksmall") : Promise.resolve()) },
    );
    const shoalGet = g.shoal;
    const stockGetOk = (g.stock * ok) / Math.max(1, ok + failed);
    rows.push(`| 4 KiB PUT, concurrency ${concurrency} | ${p.shoal.toFixed(0)} ops/s | ${p.stock.toFixed(0)} ops/s | ${(p.shoal / p.stock).toFixed(2)} |`);
    rows.push(`| 4 KiB GET, concurrency ${concurrency} | ${shoalGet.toFixed(0)} ops/s | ${stockGetOk.toFixed(0)} ops/s${failed ? ` (successful gets only: ${failed} of ${ok + failed} failed)` : ""} | ${(shoalGet / stockGetOk).toFixed(2)} |`);
  }
  return rows;
}

async function listing(nc: NatsConnection, shoal: ShoalClient) {
  const KEYS = QUICK ? 10_000 : 100_000;
  await shoal.createBucket("many");
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next < KEYS) {
      const i = next++;
      await shoal.put("many", `dir${i % 100}/obj-${String(i).padStart(7, "0")}`, "x");
    }
  }));
  const fill = KEYS / ((performance.now() - t0) / 1000);
  const lat: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    const page = await shoal.listPage("many", { prefix: `dir${i % 100}/`, maxKeys: 1000, startAfter: `dir${i % 100}/obj-${String((i * 37) % KEYS).padStart(7, "0")}` });
    lat.push(performance.now() - t);
    void page;
  }
  const full: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await shoal.listPage("many", { maxKeys: 1000, startAfter: `dir${(i * 7) % 100}/` });
    full.push(performance.now() - t);
  }
  // stock: the only way to list is the whole bucket's metadata
  const os = await new Objm(nc).create("manystock");
  for (let i = 0; i < Math.min(KEYS, 20_000); i += 1) await os.putBlob({ name: `k${i}` }, new Uint8Array(1));
  const ts = performance.now();
  const all = await os.list();
  const stockMs = performance.now() - ts;
  return [
    `| LIST 1000-key page (prefix + start-after) of ${KEYS} objects | p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${pct(lat, 0.99).toFixed(1)} ms |`,
    `| LIST 1000-key page (no prefix) | p50 ${pct(full, 0.5).toFixed(1)} ms, p99 ${pct(full, 0.99).toFixed(1)} ms |`,
    `| stock @nats-io/obj list() of ${all.length} objects (its only way to list) | ${stockMs.toFixed(0)} ms |`,
    `| (filling: ${fill.toFixed(0)} tiny PUTs/s at concurrency 64) | |`,
  ];
}

async function bigRss(url: string, actor: ChildProcess, shoal: ShoalClient) {
  const GB = QUICK ? 256 * MiB : 1024 * MiB;
  await shoal.createBucket("huge");
  const chunk = randomBytes(MiB);
  async function* gen() {
    for (let o = 0; o < GB; o += MiB) yield chunk;
  }
  const t0 = performance.now();
  await shoal.put("huge", "one", gen());
  const put = GB / MiB / ((performance.now() - t0) / 1000);
  const t1 = performance.now();
  const r = await shoal.get("huge", "one");
  let n = 0;
  for await (const c of r.body) n += c.byteLength;
  const get = GB / MiB / ((performance.now() - t1) / 1000);
  void url;
  return `| ${GB / MiB} MiB object in and out: storage actor peak RSS | ${peakRss(actor.pid!).toFixed(0)} MiB (PUT ${put.toFixed(0)} MB/s, GET ${get.toFixed(0)} MB/s, ${n === GB ? "bytes match" : "SIZE MISMATCH"}) |`;
}

/** Steps the stream's leadership until its leader does (or does not) also lead the meta group; returns it. */
async function placeLeader(cluster: NatsCluster, nc: NatsConnection, stream: string, alsoMeta: boolean): Promise<string> {
  const jsm = await jetstreamManager(nc);
  let leader: string | undefined;
  for (let i = 0; i < 20; i++) {
    leader = (await jsm.streams.info(stream)).cluster?.leader;
    if (leader !== undefined && (leader === (await cluster.metaLeader())) === alsoMeta) break;
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, "", { timeout: 5000 }).catch(() => undefined);
    await sleep(1000);
  }
  return leader!;
}

/** Seconds from `t0` until `op` first succeeds (retried every 10 ms), or undefined after 30 s. */
async function until(t0: number, op: () => Promise<unknown>): Promise<number | undefined> {
  while (performance.now() - t0 < 30_000) {
    try {
      await op();
      return (performance.now() - t0) / 1000;
    } catch {
      await sleep(10);
    }
  }
  return undefined;
}

/**
 * Time from SIGKILL of the bucket stream's leader until a put succeeds again
 * through Shoal (SDK retrying; the actor's publishes ride the failover), and,
 * as the baseline, until a raw JetStream publish (250 ms attempts) into the
 * same stream succeeds: both run at once against the same election. Two
 * placements: the victim leads only the stream, or the stream and the
 * JetStream meta group.
 */
const KILLS = Number(process.env["BENCH_KILLS"] ?? (QUICK ? 1 : 5));

async function failover(): Promise<string[]> {
  const rows: string[] = [];
  const fmt = (x: number | undefined) => (x === undefined ? "no recovery in 30 s" : `${x.toFixed(2)} s`);
  for (const alsoMeta of [false, true]) {
    const kills: Array<{ shoal: number | undefined; raw: number | undefined }> = [];
    for (let k = 0; k < KILLS; k++) kills.push(await failoverOnce(alsoMeta));
    const what = alsoMeta ? "stream + meta leader" : "stream leader only";
    if (KILLS === 1) {
      rows.push(`| Failover (SIGKILL of ${what}, R3): PUTs succeed again after | Shoal ${fmt(kills[0]!.shoal)}, raw JetStream ${fmt(kills[0]!.raw)} |`);
      continue;
    }
    const both = kills.filter((x): x is { shoal: number; raw: number } => x.shoal !== undefined && x.raw !== undefined);
    const gaps = both.map((x) => x.shoal - x.raw).sort((a, b) => a - b);
    const shoals = both.map((x) => x.shoal).sort((a, b) => a - b);
    rows.push(
      `| Failover (SIGKILL of ${what}, R3), ${KILLS} kills: Shoal − raw per kill | ${kills.map((x) => (x.shoal === undefined || x.raw === undefined ? "n/a" : `${(x.shoal - x.raw).toFixed(2)}`)).join(", ")} s; median ${gaps.length ? gaps[Math.floor(gaps.length / 2)]!.toFixed(2) : "n/a"}, max ${gaps.length ? gaps.at(-1)!.toFixed(2) : "n/a"} s; Shoal max ${shoals.length ? shoals.at(-1)!.toFixed(2) : "n/a"} s; ${KILLS - both.length} without recovery in 30 s |`,
    );
  }
  return rows;
}

/** One SIGKILL of the bucket stream's leader (and the meta leader): seconds until a Shoal PUT and a raw publish succeed again. */
async function failoverOnce(alsoMeta: boolean): Promise<{ shoal: number | undefined; raw: number | undefined }> {
  {
    const cluster = await NatsCluster.start({ size: 3, dir: tmp(), auth });
    let actor: ChildProcess | undefined;
    try {
      const url = cluster.urls.join(",");
      actor = await startActor(url);
      const shoal = await ShoalClient.connect({ servers: url }, { timeoutMs: 1000, deadlineMs: 30_000 });
      await shoal.createBucket("failover", { replicas: 3 });
      for (let i = 0; i < 20; i++) await shoal.put("failover", `warm${i}`, "x");
      const nc = await connect({ servers: cluster.urls });
      const js = jetstream(nc);
      const victim = await placeLeader(cluster, nc, "OBJ_failover", alsoMeta);
      await cluster.server(victim).kill();
      const t0 = performance.now();
      const [shoalS, raw] = await Promise.all([
        until(t0, () => shoal.put("failover", "after", "x")),
        until(t0, () => js.publish("$O.failover.C.bench-probe", "x", { timeout: 250 })),
      ]);
      await nc.close();
      await shoal.close();
      return { shoal: shoalS, raw };
    } finally {
      actor?.kill("SIGKILL");
      await cluster.kill();
    }
  }
}

// BENCH_ONLY=r1,small,list,rss,r3,failover runs a subset.
const only = process.env["BENCH_ONLY"]?.split(",");
const want = (part: string) => !only || only.includes(part);
const out: string[] = [`\nShoal storage benchmark — ${new Date().toISOString()} — ${BIG / MiB} MiB objects, median of ${RUNS} after a warm-up, paths in turns${QUICK ? " (BENCH_QUICK)" : ""}`];
const measurements: string[] = [];
try {
  if (want("r1") || want("small") || want("list") || want("rss")) {
    const srv = new NatsServer({ name: "b1", dir: tmp(), auth, maxFileStore: "40GB" });
    servers.push(srv);
    await srv.start();
    const actor = await startActor(srv.url);
    const nc = await connect({ servers: srv.url });
    const shoal = await ShoalClient.connect({ servers: srv.url }, { timeoutMs: 10_000 });
    if (want("r1")) {
      const r1 = await throughput("R1, 1 server", nc, shoal, 1);
      out.push("", "| setup | path | PUT MB/s | GET MB/s | PUT vs raw | GET vs raw |", "|---|---|---|---|---|---|", ...r1.rows);
      out.push("", `Shoal vs stock @nats-io/obj at R1: PUT ×${(r1.shoalPut / r1.stockPut).toFixed(1)}, GET ×${(r1.shoalGet / r1.stockGet).toFixed(1)}`);
    }
    if (want("small")) out.push("", "| small objects | Shoal | stock @nats-io/obj | ratio |", "|---|---|---|---|", ...(await smallOps(nc, shoal)));
    if (want("list")) measurements.push(...(await listing(nc, shoal)));
    if (want("rss")) measurements.push(await bigRss(srv.url, actor, shoal));
    await shoal.close();
    await nc.close();
    actor.kill("SIGTERM");
    await srv.stop();
  }
  if (want("r3")) {
    const cl = await NatsCluster.start({ size: 3, dir: tmp(), auth, server: { maxFileStore: "20GB" } });
    servers.push(cl);
    await startActor(cl.urls.join(","));
    const nc3 = await connect({ servers: cl.urls });
    const shoal3 = await ShoalClient.connect({ servers: cl.urls.join(",") }, { timeoutMs: 10_000 });
    const r3 = await throughput("R3, 3 servers", nc3, shoal3, 3);
    out.push("", "| setup | path | PUT MB/s | GET MB/s | PUT vs raw | GET vs raw |", "|---|---|---|---|---|---|", ...r3.rows);
    out.push("", `Shoal vs stock @nats-io/obj at R3: PUT ×${(r3.shoalPut / r3.stockPut).toFixed(1)}, GET ×${(r3.shoalGet / r3.stockGet).toFixed(1)}`);
    await shoal3.close();
    await nc3.close();
    await cl.stop();
  }
  if (want("failover")) measurements.push(...(await failover()));
  if (measurements.length > 0) out.push("", "| measurement | result |", "|---|---|", ...measurements);
  console.log(out.join("\n"));
} finally {
  for (const p of procs) p.kill("SIGKILL");
  // a bench that failed half-way stops its servers too (they used to outlive it)
  for (const x of servers) await x.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
