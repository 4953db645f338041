/**
 * Does the chunk (message) size change what a PUT costs nats-server and the
 * writer? 256 MiB published as ~1 MiB, 4 MiB and ~8 MiB JetStream messages
 * (max_payload 8MB) through the store's writer (writeChunks: msg ids,
 * pipelined with an 8 MiB window, MD5 and SHA-256 on workers), the sizes in
 * turns, 3 rounds; prints the medians of MB/s, the writer's CPU and the
 * server's CPU per GiB. A probe, not part of `npm run bench`:
 *
 *   node --import=tsx bench/putsize-probe.ts
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
import { removeChunks, writeChunks } from "../src/store/writer.ts";
import type { Jet } from "../src/store/types.ts";

installPayloadPaths();
const MiB = 1 << 20;
const TOTAL = 256 * MiB;
const dir = mkdtempSync(join(tmpdir(), "shoal-putsize-"));
const srv = new NatsServer({ name: "ps", dir, auth: { sysUser: "sys", sysPassword: "s", appUser: "u", appPassword: "p" }, maxPayload: "8MB", maxFileStore: "20GB", ...(process.env["PROBE_GOMEMLIMIT"] ? { memoryLimit: process.env["PROBE_GOMEMLIMIT"] } : {}) });
const procCpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
await srv.start();
try {
  const nc = await connect({ servers: srv.url, user: "u", pass: "p" });
  const jet: Jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("putsize");
  await ensureStore(jet.jsm, store, 1);
  const block = randomBytes(MiB);
  async function* body() {
    for (let o = 0; o < TOTAL; o += MiB) yield block;
  }
  const sizes = [MiB - 1024, 4 * MiB - 4096, 8 * MiB - 8192];
  const rows = new Map<number, Array<{ mbs: number; client: number; server: number }>>();
  for (let r = 0; r < 4; r++) {
    for (const chunkSize of sizes) {
      const c0 = cpu();
      const s0 = procCpu(srv.pid!);
      const t0 = performance.now();
      const w = await writeChunks(jet, store, body(), { chunkSize, windowBytes: Math.max(8 * MiB, 2 * chunkSize) });
      const s = (performance.now() - t0) / 1000;
      const row = { mbs: TOTAL / MiB / s, client: ((cpu() - c0) * 1024 * MiB) / TOTAL, server: ((procCpu(srv.pid!) - s0) * 1024 * MiB) / TOTAL };
      await removeChunks(jet.jsm, store, w.id);
      if (r > 0) rows.set(chunkSize, [...(rows.get(chunkSize) ?? []), row]);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\nput size probe — ${new Date().toISOString()} — ${TOTAL / MiB} MiB per PUT, median of 3 in turns\n`);
  console.log("| chunk | MB/s | writer CPU s per GiB | nats-server CPU s per GiB |\n|---|---|---|---|");
  for (const [k, v] of rows) console.log(`| ${(k / MiB).toFixed(2)} MiB | ${med(v.map((x) => x.mbs)).toFixed(0)} | ${med(v.map((x) => x.client)).toFixed(2)} | ${med(v.map((x) => x.server)).toFixed(2)} |`);
  await nc.close();
} finally {
  await srv.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
