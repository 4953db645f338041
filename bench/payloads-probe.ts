/**
 * What src/client/payloads.ts saves, alone, in one process against its own
 * nats-server (the patch is process-wide, so one process per mode; run the
 * modes in turns):
 *
 *   for m in off on off on; do node --import=tsx bench/payloads-probe.ts $m pub; done
 *   for m in off on onread off on onread; do node --import=tsx bench/payloads-probe.ts $m get; done
 *
 * - pub: publishes 64 MiB as 1 MiB JetStream messages (8 in flight), 10
 *   timed rounds after 2 warm-ups; prints its own CPU and the server's per
 *   64 MiB.
 * - get: reads 64 MiB of 1 MiB messages by batched Direct Get (src/jet
 *   readSeqs, 16 × 4), 10 timed rounds after 2; prints the reader's CPU.
 * - mode `onread` (get only) is an experiment measured and not adopted:
 *   on top of the patches, the transport's socket reads into large slabs
 *   (net's `onread`), so most 1 MiB payloads arrive in one read and need no
 *   copy. It saved a further ~0.01 s per 64 MiB (docs/datapath.md), not
 *   worth replacing the transport's dial (and its TLS upgrade) for.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { createRequire } from "node:module";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { deferred } from "@nats-io/nats-core";
import { NatsServer } from "../src/engine/server.ts";
import { readSeqs } from "../src/jet/index.ts";

const MODE = process.argv[2] ?? "off";
const WHAT = process.argv[3] ?? "pub";
if (MODE !== "off") (await import("../src/client/payloads.ts")).installPayloadPaths();
if (MODE === "onread") {
  const req = createRequire(import.meta.url);
  const { NodeTransport } = req("@nats-io/transport-node/lib/node_transport.js");
  const SLAB = 4 * 1024 * 1024;
  const MIN = 256 * 1024;
  let slab = new Uint8Array(SLAB);
  let off = 0;
  NodeTransport.prototype.dial = function (hp: { port: number; hostname: string }) {
    const d = deferred<unknown>();
    let dialError: unknown;
    const socket = createConnection(
      {
        port: hp.port,
        host: hp.hostname,
        onread: {
          // bump-allocated: a slab is never reused (delivered payloads may be views into it)
          buffer: () => {
            if (SLAB - off < MIN) {
              slab = new Uint8Array(SLAB);
              off = 0;
            }
            return slab.subarray(off);
          },
          callback: (n: number, buf: Uint8Array) => {
            off += n;
            socket.emit("data", buf.subarray(0, n));
            return true;
          },
        },
      } as never,
      () => {
        d.resolve(socket);
        socket.removeAllListeners();
      },
    );
    socket.on("error", (e) => (dialError = e));
    socket.on("close", () => {
      socket.removeAllListeners();
      d.reject(dialError);
    });
    socket.setNoDelay(true);
    return d;
  };
}
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const dir = mkdtempSync(join(tmpdir(), "shoal-probe-"));
const srv = new NatsServer({ name: "p", dir, auth, maxFileStore: "10GB" });
await srv.start();
const cpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const CHUNK = 1047552;
try {
  const nc = await connect({ servers: srv.url, user: auth.appUser, pass: auth.appPassword });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "P", subjects: ["p.>"], allow_direct: true });
  const js = jetstream(nc);
  const res: number[] = [];
  const srvc: number[] = [];
  if (WHAT === "get") {
    const seqs: number[] = [];
    for (let i = 0; i < 64; i++) {
      const b = new Uint8Array(CHUNK);
      b[0] = i;
      seqs.push((await js.publish("p.x", b)).seq);
    }
    for (let r = 0; r < 12; r++) {
      const c0 = process.cpuUsage();
      const s0 = cpu(srv.pid!);
      let n = 0;
      for await (const m of readSeqs(jsm, "P", "p.x", seqs, { windowMsgs: 16, inflight: 4 })) {
        n += m.data.byteLength;
        if (m.data[0] !== m.seq - seqs[0]!) throw new Error("a message's bytes are not its own");
      }
      const c = process.cpuUsage(c0);
      if (n !== 64 * CHUNK) throw new Error(`read ${n}`);
      if (r >= 2) {
        res.push((c.user + c.system) / 1e6);
        srvc.push(cpu(srv.pid!) - s0);
      }
    }
  } else {
    const chunk = () => {
      const b = new Uint8Array(new ArrayBuffer(CHUNK));
      b[0] = 1;
      return b;
    };
    for (let r = 0; r < 12; r++) {
      const c0 = process.cpuUsage();
      const s0 = cpu(srv.pid!);
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < 64; i++) {
        pending.push(js.publish(`p.${r}`, chunk()));
        if (pending.length >= 8) await pending.shift();
      }
      await Promise.all(pending);
      const c = process.cpuUsage(c0);
      if (r >= 2) {
        res.push((c.user + c.system) / 1e6);
        srvc.push(cpu(srv.pid!) - s0);
      }
      await jsm.streams.purge("P");
    }
  }
  res.sort((a, b) => a - b);
  srvc.sort((a, b) => a - b);
  console.log(`${MODE} ${WHAT}: client CPU s per 64 MiB: median ${res[5]!.toFixed(3)} min ${res[0]!.toFixed(3)} | server median ${srvc[5]!.toFixed(3)}`);
  await nc.close();
} finally {
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
}
