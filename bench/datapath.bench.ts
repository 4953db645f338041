/**
 * Raw JetStream baselines for issue 15's targets, and prototypes of the new
 * data path built on src/jet, measured in the same run on nats-server ≥ 2.14:
 *
 * - 64 MiB PUT: pipelined publishes vs fast-ingest batches, 1 MiB and
 *   128 KiB messages (the faster raw path is the baseline), and a whole
 *   object as one atomic batch;
 * - 64 MiB GET: an ordered consumer vs a batched Direct Get walk;
 * - 4 KiB: single-message publish at concurrency 16, and a small object put
 *   as one atomic batch (chunk + metadata with rollup) vs Shoal's current
 *   small PUT (ShoalClient → storage actor) vs stock @nats-io/obj;
 *   and 4 KiB GET the same way.
 *
 * Paths take turns after a warm-up (bench/turns.ts); medians. The machine
 * may be shared: the load average is printed beside every table.
 *
 *   npm run bench -- datapath     BENCH_QUICK=1 (16 MiB, 3 runs) · BENCH_RUNS=n · BENCH_ONLY=put,get,small · BENCH_R3=1
 */
import { dirMaker } from "./lifetime.ts";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { nuid } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { startFastIngest } from "@nats-io/jetstream/internal";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { mbpsInTurns, opsMedianInTurns } from "./turns.ts";
import { NatsServer } from "../src/engine/server.ts";
import { NatsCluster } from "../src/engine/cluster.ts";
import { ShoalClient } from "../src/client/index.ts";
import { publishAtomic, ingest, buildHeaders, getLast, purgeSubject, readSubject, readSeqs, subjectSeqs, enableFeatures } from "../src/jet/index.ts";
import { chunkSubject, chunkSubjectAll, metaSubject, objectStoreStream } from "../src/subjects/index.ts";
import { startStorageActor } from "./actor.ts";
import { roomForStockGets } from "./stock.ts";

const QUICK = process.env["BENCH_QUICK"] === "1";
const MiB = 1024 * 1024;
const KiB = 1024;
const BIG = (QUICK ? 16 : 64) * MiB;
const RUNS = Number(process.env["BENCH_RUNS"] ?? (QUICK ? 3 : 5));
const only = process.env["BENCH_ONLY"]?.split(",");
const want = (p: string) => !only || only.includes(p);
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const root = new URL("../", import.meta.url).pathname;
const dirs: string[] = [];
const procs: ChildProcess[] = [];
/** Servers and clusters to kill if the run fails half way (they run in their own process group and would outlive it). */
const engines: Array<{ kill(): Promise<void> | void }> = [];
const tmp = dirMaker(dirs);
const load = () => `load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`;
const body = randomBytes(BIG);

const startActor = (url: string) => startStorageActor(url, { cwd: root, procs });

/** Pipelined single publishes: `window` acks outstanding. */
async function pipelined(nc: NatsConnection, subj: string, size: number, window: number) {
  const js = jetstream(nc);
  const inflight: Promise<unknown>[] = [];
  for (let o = 0; o < BIG; o += size) {
    inflight.push(js.publish(subj, body.subarray(o, o + size)));
    if (inflight.length >= window) await inflight.shift();
  }
  await Promise.all(inflight);
}

/** One fast-ingest batch of the whole body. */
async function fastIngest(nc: NatsConnection, subj: string, size: number, ackInterval?: number, maxOutstandingAcks?: number) {
  const fi = await startFastIngest(nc, subj, body.subarray(0, size), { allowGaps: false, ...(ackInterval ? { ackInterval } : {}), ...(maxOutstandingAcks ? { maxOutstandingAcks } : {}) });
  for (let o = size; o < BIG; o += size) await fi.add(subj, body.subarray(o, o + size));
  // at R3 the final ack may come on the last data message's reply subject (see src/jet/ingest.ts): the batch's own ack counts
  const ack = await fi.end().catch(async (e: unknown) => {
    const a = await fi.done().catch(() => undefined);
    if (!a) throw e;
    return a;
  });
  if (ack.count !== BIG / size) throw new Error(`fast ingest committed ${ack.count} of ${BIG / size}`);
}

async function puts(nc: NatsConnection, replicas: number): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const stream = `P${replicas}`;
  await jsm.streams.add({ name: stream, subjects: [`p${replicas}.>`], num_replicas: replicas, allow_batched: true, allow_atomic: true, allow_direct: true });
  const s = (path: string, i: number) => `p${replicas}.${path}.${i}`;
  const paths = {
    "pipelined 1 MiB ×16": (i: number) => pipelined(nc, s("pp1m", i), MiB, 16),
    "pipelined 128 KiB ×32": (i: number) => pipelined(nc, s("pp128k", i), 128 * KiB, 32),
    "fast-ingest 1 MiB": (i: number) => fastIngest(nc, s("fi1m", i), MiB),
    "fast-ingest 128 KiB": (i: number) => fastIngest(nc, s("fi128k", i), 128 * KiB),
    "fast-ingest 128 KiB, ackInterval 32": (i: number) => fastIngest(nc, s("fi128k32", i), 128 * KiB, 32),
    "fast-ingest 128 KiB, ackInterval 64, 3 windows": (i: number) => fastIngest(nc, s("fi128k64", i), 128 * KiB, 64, 3),
    "fast-ingest 1 MiB, ackInterval 8, 3 windows": (i: number) => fastIngest(nc, s("fi1m8", i), MiB, 8, 3),
    "one atomic batch, 128 KiB msgs": async (i: number) => {
      const msgs = [];
      for (let o = 0; o < BIG; o += 128 * KiB) msgs.push({ subject: s("at128k", i), data: body.subarray(o, o + 128 * KiB) });
      await publishAtomic(nc, msgs, { timeoutMs: 60_000 });
    },
  };
  const r = await mbpsInTurns(paths, { runs: RUNS, bytes: BIG });
  const best = Math.max(r["pipelined 1 MiB ×16"], r["pipelined 128 KiB ×32"], r["fast-ingest 1 MiB"], r["fast-ingest 128 KiB"]);
  await jsm.streams.delete(stream);
  return Object.entries(r).map(([k, v]) => `| R${replicas} PUT ${BIG / MiB} MiB | ${k} | ${(v as number).toFixed(0)} | ${((v as number) / best).toFixed(2)} |`);
}

async function gets(nc: NatsConnection, replicas: number): Promise<string[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const stream = `G${replicas}`;
  await jsm.streams.add({ name: stream, subjects: [`g${replicas}.>`], num_replicas: replicas, allow_direct: true });
  for (const [subj, size] of [[`g${replicas}.1m`, MiB], [`g${replicas}.128k`, 128 * KiB]] as const) await pipelined(nc, subj, size, 16);
  const ordered = async (subj: string) => {
    const c = await js.consumers.get(stream, { filter_subjects: subj, deliver_policy: DeliverPolicy.All });
    let got = 0;
    for await (const m of await c.consume()) if ((got += m.data.length) >= BIG) break;
  };
  // the chunk sequences, as Shoal keeps them in an object's metadata
  const seqsOf = { "1m": await subjectSeqs(js, jsm, stream, `g${replicas}.1m`, { timeoutMs: 60_000 }), "128k": await subjectSeqs(js, jsm, stream, `g${replicas}.128k`, { timeoutMs: 60_000 }) };
  const known = async (which: "1m" | "128k", windowMsgs: number, inflight: number) => {
    let got = 0;
    for await (const m of readSeqs(jsm, stream, `g${replicas}.${which}`, seqsOf[which], { windowMsgs, inflight })) got += m.data.length;
    if (got !== BIG) throw new Error(`direct read ${got} of ${BIG}`);
  };
  const direct = async (subj: string, window: number) => {
    let got = 0;
    for await (const m of readSubject(jsm, stream, subj, { windowBytes: window })) got += m.data.length;
    if (got !== BIG) throw new Error(`direct walk read ${got} of ${BIG}`);
  };
  const r = await mbpsInTurns(
    {
      "ordered consumer, 1 MiB msgs": () => ordered(`g${replicas}.1m`),
      "ordered consumer, 128 KiB msgs": () => ordered(`g${replicas}.128k`),
      "batched Direct Get, 1 MiB msgs, 8 MiB windows": () => direct(`g${replicas}.1m`, 8 * MiB),
      "batched Direct Get, 1 MiB msgs, 2 MiB windows": () => direct(`g${replicas}.1m`, 2 * MiB),
      "batched Direct Get, 128 KiB msgs, 8 MiB windows": () => direct(`g${replicas}.128k`, 8 * MiB),
      "batched Direct Get of known seqs, 1 MiB msgs, 4-msg windows, 4 in flight": () => known("1m", 4, 4),
      "batched Direct Get of known seqs, 1 MiB msgs, 2-msg windows, 8 in flight": () => known("1m", 2, 8),
      "batched Direct Get of known seqs, 128 KiB msgs, 32-msg windows, 4 in flight": () => known("128k", 32, 4),
      "batched Direct Get of known seqs, 1 MiB msgs, 16-msg windows, 4 in flight": () => known("1m", 16, 4),
      "batched Direct Get, 128 KiB msgs, 32 MiB windows": () => direct(`g${replicas}.128k`, 32 * MiB),
    },
    { runs: RUNS, bytes: BIG },
  );
  const best = Math.max(r["ordered consumer, 1 MiB msgs"], r["ordered consumer, 128 KiB msgs"]);
  await jsm.streams.delete(stream);
  return Object.entries(r).map(([k, v]) => `| R${replicas} GET ${BIG / MiB} MiB | ${k} | ${(v as number).toFixed(0)} | ${((v as number) / best).toFixed(2)} (vs best ordered consumer) |`);
}

type SmallWay = "atomic" | "pipelined" | "ingest" | "pair";

/**
 * Prototype small PUT in the stock format: read the key's metadata (Direct
 * Get), write chunk + metadata (rollup of the metadata subject,
 * compare-and-set on it), then delete the old chunk. Three ways to write the
 * pair: one atomic batch; two pipelined publishes awaited together; one
 * fast-ingest batch ending with the metadata.
 */
async function smallPut(way: SmallWay, nc: NatsConnection, jsm: JetStreamManager, store: string, key: string, data: Uint8Array) {
  const js = jetstream(nc);
  const stream = objectStoreStream(store);
  const meta = metaSubject(store, key);
  // "pair": no read and no purge on the path (unconditional PUT; old chunks left to a cleaner fed by the metadata stream)
  const old = way === "pair" ? null : await getLast(jsm, stream, meta);
  const id = nuid.next();
  const info = JSON.stringify({
    name: key,
    bucket: store,
    nuid: id,
    size: data.length,
    chunks: 1,
    mtime: new Date().toISOString(),
    digest: `SHA-256=${createHash("sha256").update(data).digest("base64url")}=`,
    deleted: false,
    options: { max_chunk_size: 128 * KiB },
  });
  const chunk = chunkSubject(store, id);
  const cas = way === "pair" ? { rollup: "sub" as const } : { rollup: "sub" as const, expectLastSubjectSeq: old?.seq ?? 0 };
  if (way === "atomic") {
    await publishAtomic(nc, [{ subject: chunk, data }, { subject: meta, data: info, ...cas }], { timeoutMs: 10_000 });
  } else if (way === "pipelined" || way === "pair") {
    const c = js.publish(chunk, data);
    const m = js.publish(meta, info, { headers: buildHeaders(cas, true) });
    const [cr, mr] = await Promise.allSettled([c, m]);
    if (mr.status === "rejected" || cr.status === "rejected") {
      await purgeSubject(jsm, stream, chunk); // the pair did not land: no orphan chunk
      throw mr.status === "rejected" ? mr.reason : (cr as PromiseRejectedResult).reason;
    }
  } else {
    await ingest(nc, chunk, [data], { timeoutMs: 10_000, last: { subject: meta, data: info, ...cas } });
  }
  if (old) {
    const prev = JSON.parse(new TextDecoder().decode(old.data)) as { nuid: string };
    await purgeSubject(jsm, stream, chunkSubject(store, prev.nuid));
  }
}

async function subjectCounts(jsm: JetStreamManager, stream: string, filter: string): Promise<Record<string, number>> {
  return (await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {};
}

/** Prototype small GET: metadata by Direct Get, then the one-chunk object's chunk as the last message on its subject (no sequence needed). */
async function directSmallGet(jsm: JetStreamManager, store: string, key: string): Promise<Uint8Array> {
  const stream = objectStoreStream(store);
  const m = await getLast(jsm, stream, metaSubject(store, key));
  if (!m) throw new Error(`no ${key}`);
  const info = JSON.parse(new TextDecoder().decode(m.data)) as { nuid: string; size: number };
  const c = await getLast(jsm, stream, chunkSubject(store, info.nuid));
  if (!c || c.data.length !== info.size) throw new Error(`short read of ${key}`);
  return c.data;
}

async function small(nc: NatsConnection, shoal: ShoalClient): Promise<string[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const data = randomBytes(4 * KiB);
  await jsm.streams.add({ name: "RAWSMALL", subjects: ["rs.>"], allow_direct: true });
  const stock: ObjectStore = await new Objm(nc).create("stocksmall");
  await roomForStockGets(jsm, "stocksmall");
  const protos: Record<SmallWay, ObjectStore> = {} as Record<SmallWay, ObjectStore>;
  for (const way of ["atomic", "pipelined", "ingest", "pair"] as const) {
    protos[way] = await new Objm(nc).create(`proto${way}`);
    await enableFeatures(jsm, objectStoreStream(`proto${way}`), { atomic: true, batched: true });
  }
  await shoal.createBucket("shoalsmall");
  const o = { n: QUICK ? 300 : 1000, warm: 200, runs: RUNS, concurrency: 16 };
  const keys = 500;
  const p = await opsMedianInTurns(
    {
      raw: (i) => js.publish(`rs.${i % keys}`, data),
      atomic: (i) => smallPut("atomic", nc, jsm, "protoatomic", `k${i % keys}`, data),
      pipelined: (i) => smallPut("pipelined", nc, jsm, "protopipelined", `k${i % keys}`, data),
      ingest: (i) => smallPut("ingest", nc, jsm, "protoingest", `k${i % keys}`, data),
      pair: (i) => smallPut("pair", nc, jsm, "protopair", `k${i % keys}`, data),
      shoal: (i) => shoal.put("shoalsmall", `k${i % keys}`, data),
      stock: (i) => stock.putBlob({ name: `k${i % keys}` }, data),
    },
    o,
  );
  // every key of the prototype reads back through stock @nats-io/obj, byte for byte
  for (const [way, os] of Object.entries(protos)) {
    for (const k of [0, 1, 150]) {
      const b = await os.getBlob(`k${k}`);
      if (!b || !Buffer.from(b).equals(data)) throw new Error(`stock read of ${way} prototype object k${k} failed`);
    }
    const chunks = Object.keys(await subjectCounts(jsm, objectStoreStream(`proto${way}`), chunkSubjectAll(`proto${way}`))).length;
    const written = Math.min(keys, Math.max(o.warm, o.runs * o.n)); // keys i % 500 for i < max(warm, runs·n)
    if (chunks !== written && way !== "pair") throw new Error(`${way}: ${chunks} chunk subjects for ${written} keys (old chunks left behind)`);
  }
  let stockGetErrors = 0;
  const g = await opsMedianInTurns(
    {
      raw: (i) => jsm.direct.getMessage("RAWSMALL", { last_by_subj: `rs.${i % keys}` }),
      direct: (i) => directSmallGet(jsm, "protopipelined", `k${i % keys}`),
      shoal: (i) => shoal.getBytes("shoalsmall", `k${i % keys}`),
      // stock creates a consumer per get; on a loaded server they can hit "maximum consumers limit reached": counted, not fatal
      stock: (i) => stock.getBlob(`k${i % keys}`).catch(() => void stockGetErrors++),
    },
    o,
  );
  return [
    `| 4 KiB PUT c16 | raw js.publish | ${p.raw.toFixed(0)} | 1.00 | ${(p.raw / p.stock).toFixed(2)} |`,
    `| 4 KiB PUT c16 | prototype: metadata read, one atomic batch (chunk + metadata rollup, CAS), old chunk purged | ${p.atomic.toFixed(0)} | ${(p.atomic / p.raw).toFixed(2)} | ${(p.atomic / p.stock).toFixed(2)} |`,
    `| 4 KiB PUT c16 | prototype: metadata read, chunk + metadata pipelined (one wait), old chunk purged | ${p.pipelined.toFixed(0)} | ${(p.pipelined / p.raw).toFixed(2)} | ${(p.pipelined / p.stock).toFixed(2)} |`,
    `| 4 KiB PUT c16 | prototype: metadata read, fast-ingest batch (chunk, last = metadata), old chunk purged | ${p.ingest.toFixed(0)} | ${(p.ingest / p.raw).toFixed(2)} | ${(p.ingest / p.stock).toFixed(2)} |`,
    `| 4 KiB PUT c16 | prototype: chunk + metadata pipelined, no read, no CAS, no purge on the path | ${p.pair.toFixed(0)} | ${(p.pair / p.raw).toFixed(2)} | ${(p.pair / p.stock).toFixed(2)} |`,
    `| 4 KiB PUT c16 | Shoal (ShoalClient → storage actor: putBytes) | ${p.shoal.toFixed(0)} | ${(p.shoal / p.raw).toFixed(2)} | ${(p.shoal / p.stock).toFixed(2)} |`,
    `| 4 KiB PUT c16 | stock @nats-io/obj putBlob | ${p.stock.toFixed(0)} | ${(p.stock / p.raw).toFixed(2)} | 1.00 |`,
    `| 4 KiB GET c16 | raw Direct Get last_by_subj | ${g.raw.toFixed(0)} | 1.00 | ${(g.raw / g.stock).toFixed(2)} |`,
    `| 4 KiB GET c16 | prototype: Direct Get metadata + Direct Get chunk | ${g.direct.toFixed(0)} | ${(g.direct / g.raw).toFixed(2)} | ${(g.direct / g.stock).toFixed(2)} |`,
    `| 4 KiB GET c16 | Shoal today (ShoalClient.getBytes) | ${g.shoal.toFixed(0)} | ${(g.shoal / g.raw).toFixed(2)} | ${(g.shoal / g.stock).toFixed(2)} |`,
    `| 4 KiB GET c16 | stock @nats-io/obj getBlob${stockGetErrors ? ` (${stockGetErrors} calls failed)` : ""} | ${g.stock.toFixed(0)} | ${(g.stock / g.raw).toFixed(2)} | 1.00 |`,
  ];
}

/**
 * fsync calls the server makes per operation, counted with strace attached
 * to the server process (skipped when strace is missing or not permitted).
 * Found this way: an atomic batch commit fsyncs on the file store, plain
 * publishes and fast-ingest batches do not (nats-server 2.15.1, default
 * sync_interval).
 */
async function fsyncs(servers: NatsServer[], nc: NatsConnection): Promise<string[]> {
  if (spawnSync("strace", ["-V"]).status !== 0 || servers.some((s) => s.pid === undefined)) return ["| (strace not available: fsync counts skipped) | | |"];
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "FS", subjects: ["fs.>"], num_replicas: servers.length, allow_atomic: true, allow_batched: true });
  const d = randomBytes(4 * KiB);
  const N = 100;
  const ops: Record<string, (i: number) => Promise<unknown>> = {
    "single publish": (i) => js.publish(`fs.p.${i}`, d),
    "2 pipelined publishes": (i) => Promise.all([js.publish(`fs.c.${i}`, d), js.publish(`fs.m.${i}`, "m")]),
    "atomic batch of 2": (i) => publishAtomic(nc, [{ subject: `fs.a.${i}`, data: d }, { subject: `fs.b.${i}`, data: "m" }], { timeoutMs: 10_000 }),
    "fast-ingest batch of 2": (i) => ingest(nc, `fs.f.${i}`, [d], { timeoutMs: 10_000, last: { subject: `fs.g.${i}`, data: "m" } }),
  };
  const rows: string[] = [];
  for (const [name, op] of Object.entries(ops)) {
    const traces = servers.map((srv) => {
      const file = join(tmp(), "strace.out");
      return { file, st: spawn("strace", ["-f", "-qq", "-c", "-e", "trace=fsync,fdatasync", "-o", file, "-p", String(srv.pid)], { stdio: "ignore" }) };
    });
    await sleep(1500); // strace attaches to every thread
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await op(i);
    const ms = (performance.now() - t0) / N;
    const per: string[] = [];
    for (const { file, st } of traces) {
      st.kill("SIGINT");
      const code = await new Promise<number | null>((r) => st.on("exit", (c) => r(c)));
      const text = readFileSync(file, "utf8"); // empty when no call was made
      if (code !== 0 && code !== 130 && code !== null) per.push(`strace failed (exit ${code})`); // strace exits 130 after SIGINT
      else per.push((([...text.matchAll(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)$/gm)].reduce((a, m) => a + Number(m[1]), 0)) / N).toFixed(2));
    }
    rows.push(`| ${name} | ${per.join(" / ")} | ${ms.toFixed(1)} ms (one at a time, strace attached) |`);
  }
  await jsm.streams.delete("FS");
  return rows;
}

/** R3: is an atomic batch still consecutive, and what do atomic pairs cost against plain publishes and pipelined pairs. */
async function r3small(nc: NatsConnection): Promise<string[]> {
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "R3S", subjects: ["r3.>"], num_replicas: 3, allow_atomic: true, allow_direct: true, allow_rollup_hdrs: true });
  const ack = await publishAtomic(nc, Array.from({ length: 5 }, (_, i) => ({ subject: `r3.consec.${i}`, data: "x" })), { timeoutMs: 10_000 });
  const subjects: string[] = [];
  for await (const m of readSubject(jsm, "R3S", "r3.consec.>", { windowBytes: MiB })) subjects.push(`${m.seq}:${m.subject}`);
  const consecutive = subjects.join(",") === Array.from({ length: 5 }, (_, i) => `${ack.firstSeq + i}:r3.consec.${i}`).join(",");
  const d = randomBytes(4 * KiB);
  const r = await opsMedianInTurns(
    {
      raw: (i) => js.publish(`r3.raw.${i % 500}`, d),
      atomic: (i) => publishAtomic(nc, [{ subject: `r3.c.${i}`, data: d }, { subject: `r3.m.${i % 500}`, data: "m", rollup: "sub" }], { timeoutMs: 20_000 }),
      pair: (i) => Promise.all([js.publish(`r3.pc.${i}`, d), js.publish(`r3.pm.${i % 500}`, "m", { headers: buildHeaders({ rollup: "sub" }, true) })]),
    },
    { n: QUICK ? 100 : 300, warm: 50, runs: RUNS, concurrency: 16 },
  );
  await jsm.streams.delete("R3S");
  return [
    `| raw js.publish | ${r.raw.toFixed(0)} | 1.00 |`,
    `| atomic batch (chunk + metadata rollup) | ${r.atomic.toFixed(0)} | ${(r.atomic / r.raw).toFixed(2)} |`,
    `| pipelined pair (chunk + metadata rollup) | ${r.pair.toFixed(0)} | ${(r.pair / r.raw).toFixed(2)} |`,
    `| atomic batch of 5 on consecutive sequences at R3 | ${consecutive ? "yes" : `NO: ${subjects.join(",")}`} | |`,
  ];
}

const out = {
  push(...lines: string[]) {
    console.log(lines.join("\n"));
  },
};
out.push(`\nShoal data-path baselines — ${new Date().toISOString()} — ${BIG / MiB} MiB, median of ${RUNS} in turns after a warm-up${QUICK ? " (BENCH_QUICK)" : ""}`);
try {
  const srv = new NatsServer({ name: "b1", dir: tmp(), auth, maxFileStore: "40GB" });
  engines.push(srv);
  await srv.start();
  const nc = await connect({ servers: srv.url });
  out.push(`nats-server ${nc.info?.version}`);
  if (want("put")) {
    const before = load();
    const rows = await puts(nc, 1);
    out.push("", `R1 PUT (${before} → ${load()})`, "", "| work | path | MB/s | vs best raw (pipelined or fast-ingest) |", "|---|---|---|---|", ...rows);
  }
  if (want("get")) {
    const before = load();
    const rows = await gets(nc, 1);
    out.push("", `R1 GET (${before} → ${load()})`, "", "| work | path | MB/s | ratio |", "|---|---|---|---|", ...rows);
  }
  if (want("small")) {
    await startActor(srv.url);
    const shoal = await ShoalClient.connect({ servers: srv.url }, { timeoutMs: 10_000 });
    const before = load();
    const rows = await small(nc, shoal);
    out.push("", `4 KiB objects, R1, concurrency 16, 500 keys overwritten (${before} → ${load()})`, "", "| work | path | ops/s | vs raw | vs stock |", "|---|---|---|---|---|", ...rows);
    await shoal.close();
  }
  if (want("fsync")) out.push("", `fsyncs per operation, R1 file store (${load()})`, "", "| operation | fsync calls per op | latency |", "|---|---|---|", ...(await fsyncs([srv], nc)));
  await nc.close();
  await srv.stop();
  if (process.env["BENCH_R3"] === "1") {
    const cl = await NatsCluster.start({ size: 3, dir: tmp(), auth, server: { maxFileStore: "20GB" } });
    engines.push(cl);
    const nc3 = await connect({ servers: cl.urls });
    let before = load();
    const p = await puts(nc3, 3);
    out.push("", `R3 PUT, 3 servers on this machine (${before} → ${load()})`, "", "| work | path | MB/s | vs best raw |", "|---|---|---|---|", ...p);
    before = load();
    const g = await gets(nc3, 3);
    out.push("", `R3 GET (${before} → ${load()})`, "", "| work | path | MB/s | ratio |", "|---|---|---|---|", ...g);
    before = load();
    out.push("", `R3 writes of 4 KiB at concurrency 16 (${before} → …)`, "", "| path | ops/s | vs raw |", "|---|---|---|", ...(await r3small(nc3)), `(${load()})`);
    out.push("", `fsyncs per operation, R3 (each server) (${load()})`, "", "| operation | fsync calls per op, per server | latency |", "|---|---|---|", ...(await fsyncs(cl.servers, nc3)));
    await nc3.close();
    await cl.stop();
  }
} finally {
  for (const p of procs) p.kill("SIGKILL");
  for (const e of engines) await Promise.resolve(e.kill()).catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
