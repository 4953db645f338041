/**
 * The cost of `sync_interval: always` (nats.conf, docs/cluster.md) on Shoal's
 * PUT path: two single servers on the same disk, one with nats-server's
 * default (fsync at least every 2 minutes) and one with `sync_interval:
 * always` (fsync before every ack), each with its own storage actor process;
 * the same PUTs through Shoal's SDK, and raw JetStream publishes for the
 * engine's own share, taking turns (bench/turns.ts).
 *
 *   npm run bench -- fsync            (BENCH_QUICK=1 for a short run;
 *                                      BENCH_DIR=/path to measure another disk)
 */
import { dirMaker } from "./lifetime.ts";
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { mbpsInTurns, opsInTurns } from "./turns.ts";
import { NatsServer } from "../src/engine/server.ts";
import { ShoalClient } from "../src/client/index.ts";
import { startStorageActor } from "./actor.ts";

const QUICK = process.env["BENCH_QUICK"] === "1";
const MiB = 1024 * 1024;
const BIG = (QUICK ? 8 : 64) * MiB;
const RUNS = QUICK ? 1 : 5;
const N = QUICK ? 300 : 2000;
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const root = new URL("../", import.meta.url).pathname;
const base = process.env["BENCH_DIR"] ?? tmpdir();
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const servers: NatsServer[] = [];
const tmp = dirMaker(dirs, base);

const startActor = (url: string) => startStorageActor(url, { cwd: root, procs });

interface Side {
  nc: NatsConnection;
  shoal: ShoalClient;
  js: ReturnType<typeof jetstream>;
}

async function side(name: string, extra: string[]): Promise<Side> {
  const srv = new NatsServer({ name, dir: tmp(), auth, maxFileStore: "20GB", extra: extra.length ? [`jetstream { ${extra.join(" ")} }`] : [] });
  servers.push(srv);
  await srv.start();
  const varz = await srv.monitor<{ jetstream?: { config?: { sync_always?: boolean } } }>("/varz");
  if (Boolean(varz.jetstream?.config?.sync_always) !== extra.length > 0) throw new Error(`${name}: sync_always is ${varz.jetstream?.config?.sync_always}`);
  await startActor(srv.url);
  const nc = await connect({ servers: srv.url });
  const shoal = await ShoalClient.connect({ servers: srv.url }, { timeoutMs: 30_000 });
  // a retried create whose first attempt landed (a loaded machine) answers BucketAlreadyExists
  await shoal.createBucket("fsync").catch((e: { code?: string }) => {
    if (e?.code !== "BucketAlreadyExists") throw e;
  });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "RAW", subjects: ["raw.>"] });
  return { nc, shoal, js: jetstream(nc) };
}

const body = randomBytes(BIG);
const small = randomBytes(4096);
async function* slices(buf: Buffer, size = 256 * 1024) {
  for (let o = 0; o < buf.length; o += size) yield buf.subarray(o, o + size);
}

try {
  // nats-server merges a second `jetstream {}` block into the first: only sync_interval is added.
  const def = await side("default", []);
  const always = await side("always", ["sync_interval: always"]);
  let fs = "?";
  try {
    fs = `0x${statfsSync(base).type.toString(16)}`;
  } catch {
    // old Node
  }
  const rows: string[] = [];
  const row = (work: string, a: number, b: number, unit: string) => rows.push(`| ${work} | ${a.toFixed(0)} ${unit} | ${b.toFixed(0)} ${unit} | ${(b / a).toFixed(2)} |`);
  for (const concurrency of [1, 16]) {
    const o = { n: N, concurrency, warm: 100 };
    const p = await opsInTurns({ default: (i) => def.shoal.put("fsync", `k${i % 500}`, small), always: (i) => always.shoal.put("fsync", `k${i % 500}`, small) }, o);
    row(`Shoal 4 KiB PUT, concurrency ${concurrency}`, p.default, p.always, "ops/s");
    const r = await opsInTurns({ default: (i) => def.js.publish(`raw.${i % 500}`, small), always: (i) => always.js.publish(`raw.${i % 500}`, small) }, o);
    row(`raw JetStream 4 KiB publish, concurrency ${concurrency}`, r.default, r.always, "ops/s");
  }
  const big = await mbpsInTurns(
    {
      default: async (i) => void (await def.shoal.put("fsync", `big${i}`, slices(body))),
      always: async (i) => void (await always.shoal.put("fsync", `big${i}`, slices(body))),
    },
    { runs: RUNS, bytes: BIG },
  );
  row(`Shoal ${BIG / MiB} MiB PUT`, big.default, big.always, "MB/s");
  console.log(
    [
      `\nsync_interval: default vs always — ${new Date().toISOString()} — one server each, R1, store on ${base} (statfs type ${fs}); small PUTs: ${N} per path after 100 warm-up, in turns; big: median of ${RUNS}${QUICK ? " (BENCH_QUICK)" : ""}`,
      "",
      "| work | default (fsync ≤ every 2 min) | always (fsync before each ack) | always / default |",
      "|---|---|---|---|",
      ...rows,
    ].join("\n"),
  );
  for (const s of [def, always]) {
    await s.shoal.close();
    await s.nc.close();
  }
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(servers.map((s) => s.kill()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
