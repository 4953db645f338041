/**
 * Where nats-server's CPU of a 64 MiB write goes, user against system time,
 * and with the store on disk against tmpfs: 64 MiB published as 1 MiB
 * JetStream messages with ids (8 in flight), 10 timed rounds after 2,
 * nats-server's utime and stime per 64 MiB from /proc. A probe, not part of
 * `npm run bench`:
 *
 *   node --import=tsx bench/srvput-probe.ts [dir-root]     (default: os.tmpdir())
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type PubAck } from "@nats-io/jetstream";
import { NatsServer } from "../src/engine/server.ts";

const root = process.argv[2] ?? tmpdir();
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const dir = mkdtempSync(join(root, "shoal-srvput-"));
const srv = new NatsServer({ name: "p", dir, auth, maxFileStore: "10GB" });
await srv.start();
const times = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
};
const CHUNK = 1047552;
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
try {
  const nc = await connect({ servers: srv.url, user: auth.appUser, pass: auth.appPassword });
  const jsm = await jetstreamManager(nc);
  // PROBE_OBJ=1: an object-store stream as Shoal makes one (src/store/bucket.ts); PROBE_KEEP=1: keep each round's messages
  await jsm.streams.add({ name: "P", subjects: ["p.>"], allow_direct: true, ...(process.env["PROBE_OBJ"] ? { allow_rollup_hdrs: true, allow_batched: true, allow_atomic: true, allow_msg_ttl: true, discard: "new" as never } : {}) });
  const js = jetstream(nc);
  const u: number[] = [];
  const s: number[] = [];
  const mbs: number[] = [];
  for (let r = 0; r < 12; r++) {
    const t0 = times(srv.pid!);
    const start = performance.now();
    const inflight: Promise<PubAck>[] = [];
    for (let i = 0; i < 64; i++) {
      const b = new Uint8Array(CHUNK);
      b[0] = i;
      inflight.push(js.publish(`p.${r}`, b, { msgID: `${r}.${i}` }));
      if (inflight.length >= 8) await inflight.shift();
    }
    await Promise.all(inflight);
    const ms = performance.now() - start;
    const t1 = times(srv.pid!);
    if (r >= 2) {
      u.push(t1.user - t0.user);
      s.push(t1.sys - t0.sys);
      mbs.push((64 * CHUNK) / 1e6 / (ms / 1000));
    }
    if (!process.env["PROBE_KEEP"]) await jsm.streams.purge("P", { filter: `p.${r}` });
  }
  console.log(`${root}${process.env["PROBE_OBJ"] ? " obj" : ""}${process.env["PROBE_KEEP"] ? " keep" : ""}: nats-server per 64 MiB — user ${med(u).toFixed(3)} s, sys ${med(s).toFixed(3)} s; ${med(mbs).toFixed(0)} MB/s (median of ${u.length})`);
  await nc.close();
} finally {
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
}
