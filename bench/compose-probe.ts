/**
 * Reading a composed multipart object (src/store/compose.ts: its bytes on
 * one chunk subject per part) against the same bytes on one chunk subject
 * (the stock form its restatement writes), through the store's reader, in
 * one process against its own nats-server; the two reads in turns. Also the
 * restatement itself (the background copy) and its CPU.
 *
 *   node --import=tsx bench/compose-probe.ts [MiB=256] [rounds=5]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../src/engine/server.ts";
import { installPayloadPaths } from "../src/client/payloads.ts";
import { ensureStore, storeRef } from "../src/store/bucket.ts";
import { completeUpload, createUpload, openMultipart, uploadPart } from "../src/store/multipart.ts";
import { restateComposed } from "../src/store/compose.ts";
import { readObject, statObject } from "../src/store/reader.ts";
import type { Jet } from "../src/store/types.ts";

installPayloadPaths();
const MiB = 1024 * 1024;
const SIZE = Number(process.argv[2] ?? 256) * MiB;
const ROUNDS = Number(process.argv[3] ?? 5);
const PART = 16 * MiB;
const dir = mkdtempSync(join(tmpdir(), "shoal-compose-probe-"));
const srv = new NatsServer({ name: "p1", dir, auth: { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" }, maxFileStore: "20GB" });
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
/** CPU seconds of a process (utime + stime, /proc; 100 ticks a second). */
const procCpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
try {
  await srv.start();
  const nc = await connect({ servers: srv.url });
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("probe");
  await ensureStore(jet.jsm, store, 1);
  const kv = await openMultipart(jet.js, jet.jsm);
  const block = randomBytes(PART);
  async function* one(b: Uint8Array) {
    yield b;
  }
  const up = await createUpload(kv, "probe", "composed");
  const recs = [];
  const u0 = cpu();
  const us0 = procCpu(srv.pid!);
  const ut0 = performance.now();
  for (let i = 0; i < SIZE / PART; i++) recs.push(await uploadPart(jet, kv, store, "probe", up, i + 1, one(block)));
  const upload = { s: (performance.now() - ut0) / 1000, cpu: cpu() - u0, server: procCpu(srv.pid!) - us0 };
  let t = performance.now();
  const info = await completeUpload(jet, kv, store, "probe", up, recs.map((r) => ({ n: r.n, etag: r.etag })));
  const completeMs = performance.now() - t;
  // the same bytes on one subject: a second upload, restated
  const up2 = await createUpload(kv, "probe", "stock");
  const recs2 = [];
  for (let i = 0; i < SIZE / PART; i++) recs2.push(await uploadPart(jet, kv, store, "probe", up2, i + 1, one(block)));
  const info2 = await completeUpload(jet, kv, store, "probe", up2, recs2.map((r) => ({ n: r.n, etag: r.etag })));
  const c = cpu();
  const sc = procCpu(srv.pid!);
  t = performance.now();
  const outcome = await restateComposed(jet, store, "stock", info2.revision);
  const restateS = (performance.now() - t) / 1000;
  const restateCpu = cpu() - c;
  const restateServerCpu = procCpu(srv.pid!) - sc;
  const stock = await statObject(jet.jsm, store, "stock");
  const composed = await statObject(jet.jsm, store, "composed");
  if (!composed.parts || stock.parts || outcome !== "restated" || info.size !== SIZE) throw new Error("setup failed");
  const read = async (i: typeof stock) => {
    const c0 = cpu();
    const s0 = procCpu(srv.pid!);
    const t0 = performance.now();
    let n = 0;
    for await (const b of readObject(jet.jsm, store, i)) n += b.byteLength;
    if (n !== SIZE) throw new Error(`read ${n}`);
    return { mbs: SIZE / MiB / ((performance.now() - t0) / 1000), cpu: cpu() - c0, server: procCpu(srv.pid!) - s0 };
  };
  await read(stock);
  await read(composed);
  const rows: Record<string, Array<{ mbs: number; cpu: number; server: number }>> = { stock: [], composed: [] };
  for (let r = 0; r < ROUNDS; r++) {
    rows["stock"]!.push(await read(stock));
    rows["composed"]!.push(await read(composed));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\ncompose probe — ${new Date().toISOString()} — ${SIZE / MiB} MiB in ${SIZE / PART} parts of ${PART / MiB} MiB; completion ${completeMs.toFixed(0)} ms; restatement ${restateS.toFixed(2)} s, CPU ${restateCpu.toFixed(2)} s in this process + ${restateServerCpu.toFixed(2)} s in nats-server; for comparison, uploading the parts (one at a time, MD5 and SHA-256 each) took ${upload.s.toFixed(2)} s, CPU ${upload.cpu.toFixed(2)} s + ${upload.server.toFixed(2)} s in nats-server\n`);
  console.log("| read (store reader, whole, SHA-256 checked) | MB/s (median of " + ROUNDS + ") | reader CPU s (median) | nats-server CPU s (median) |\n|---|---|---|---|");
  for (const [k, v] of Object.entries(rows)) console.log(`| ${k === "stock" ? "one chunk subject (restated)" : "composed: one subject per part"} | ${med(v.map((x) => x.mbs)).toFixed(0)} | ${med(v.map((x) => x.cpu)).toFixed(3)} | ${med(v.map((x) => x.server)).toFixed(2)} |`);
  await nc.close();
} finally {
  await srv.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
