/**
 * Does the chunk (message) size change what a GET costs the reader? 64 MiB
 * published as 128 KiB, ~1 MiB, 4 MiB and ~8 MiB messages (max_payload
 * 8MB), each read back by batched Direct Get (src/jet readSeqs, 8 MiB
 * windows, 2 in flight); prints the reader's CPU seconds and MB/s (median
 * of 3 after a warm-up). A probe, not part of `npm run bench`:
 *
 *   node --import=tsx bench/msgsize-probe.ts     (node --cpu-prof … to see where the reader's CPU goes)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "../src/engine/server.ts";
import { readSeqs } from "../src/jet/index.ts";
const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), "shoal-cs-"));
const srv = new NatsServer({ name: "cs", dir, auth: { sysUser: "sys", sysPassword: "s", appUser: "u", appPassword: "p" }, maxPayload: "8MB" });
await srv.start();
try {
  const nc = await connect({ servers: srv.url, user: "u", pass: "p" });
  const js = jetstream(nc); const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "CS", subjects: ["cs.>"], allow_direct: true });
  const total = 64 * MiB;
  const body = randomBytes(total);
  for (const size of [128 * 1024, 1024 * 1024 - 1024, 4 * MiB, 8 * MiB - 4096]) {
    const subj = `cs.${size}`;
    const seqs: number[] = [];
    for (let o = 0; o < total; o += size) seqs.push((await js.publish(subj, body.subarray(o, o + size))).seq);
    const cpus: number[] = []; const walls: number[] = [];
    for (let r = 0; r < 4; r++) {
      const c0 = process.cpuUsage(); const t0 = performance.now(); let n = 0;
      const win = Math.max(1, Math.round(8 * MiB / size));
      for await (const m of readSeqs(jsm, "CS", subj, seqs, { windowMsgs: win, inflight: 2 })) n += m.data.byteLength;
      if (n !== total) throw new Error("short");
      const c = process.cpuUsage(c0);
      if (r) { cpus.push((c.user + c.system) / 1e6); walls.push((performance.now() - t0) / 1000); }
    }
    cpus.sort(); walls.sort();
    console.log(`msg ${(size / 1024).toFixed(0)} KiB: client CPU ${cpus[1]!.toFixed(3)} s per 64 MiB, ${(64 / walls[1]!).toFixed(0)} MB/s (load ${(await import("node:os")).loadavg()[0]!.toFixed(1)})`);
  }
  await nc.close();
} finally {
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
}
