/**
 * The GET path, end to end, against raw JetStream reads of the same bytes in
 * the same run (issue 15's GET targets): one 64 MiB object written by Shoal,
 * read by
 *   - raw: a consumer on its chunk subject (ephemeral, in memory, no acks:
 *     what an ordered consumer is), and batched Direct Get
 *     of its known sequences (src/jet readSeqs);
 *   - Shoal's NATS API (ShoalClient.get) and the S3 gateway (plain HTTP GET,
 *     no SDK on the client side, so the client costs little);
 * with the CPU seconds each process spent per GET (the storage actor and
 * the gateway run in their own processes, `shoal start`). 4 KiB GET at c16:
 * Shoal vs stock @nats-io/obj getBlob.
 *
 *   npm run bench -- getpath      BENCH_QUICK=1 · BENCH_RUNS=n · BENCH_R3=1 · BENCH_PROF=DIR (node --cpu-prof of the gateway)
 */
import { type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { S3Client, CreateBucketCommand } from "@aws-sdk/client-s3";
import { mbpsInTurns, opsPerSecond, median } from "./turns.ts";
import { roomForStockGets } from "./stock.ts";
import { NatsServer } from "../src/engine/server.ts";
import { ShoalClient } from "../src/client/index.ts";
import { readSeqs } from "../src/jet/index.ts";
import { chunkSubject, metaSubject } from "../src/subjects/index.ts";
import { decodeStoredMeta } from "../src/store/format.ts";
import { BENCH_AUTH, BENCH_KEYS, cleanUpOnSignal, removeStarted, stopStarted, within, dirMaker } from "./lifetime.ts";
import { cpuSeconds, httpGetBytes, shoalStart } from "./actor.ts";

const QUICK = process.env["BENCH_QUICK"] === "1";
const R3 = process.env["BENCH_R3"] === "1";
const PROF = process.env["BENCH_PROF"];
const MiB = 1024 * 1024;
const BIG = (QUICK ? 16 : 64) * MiB;
const RUNS = Number(process.env["BENCH_RUNS"] ?? (QUICK ? 3 : 5));
const auth = BENCH_AUTH;
const KEYS = BENCH_KEYS;
const root = new URL("../", import.meta.url).pathname;
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const servers: NatsServer[] = [];
const tmp = dirMaker(dirs);
const load = () => loadavg()[0]!.toFixed(1);
/** utime + stime of a process, seconds. */



const say = (m: string) => process.stderr.write(`[getpath ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
cleanUpOnSignal({ procs, servers, dirs }); // killed (timeout, ^C): stop what this bench started

const out: string[] = [];
try {
  const replicas = R3 ? 3 : 1;
  if (R3) {
    const names = ["g1", "g2", "g3"];
    const d = names.map(() => tmp());
    const ports = await Promise.all(names.map(async () => (await import("node:net")).createServer().listen(0)));
    const cp = ports.map((s) => (s.address() as { port: number }).port);
    for (const s of ports) s.close();
    for (let i = 0; i < 3; i++) {
      servers.push(new NatsServer({ name: names[i]!, dir: d[i]!, auth, maxFileStore: "40GB", cluster: { name: "bench", port: cp[i]!, routes: cp.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`) } }));
    }
    await Promise.all(servers.map((s) => s.start()));
  } else {
    servers.push(new NatsServer({ name: "g1", dir: tmp(), auth, maxFileStore: "40GB" }));
    await servers[0]!.start();
  }
  const url = servers.map((s) => s.url).join(",");
  const actor = await shoalStart({ cwd: root, args: ["--actors", "storage", "--nats", url], procs, keys: KEYS });
  const gw = await shoalStart({ cwd: root, args: ["--gateway", "--nats", url], procs, keys: KEYS, waitFor: /^S3: (http:\S+)$/m, ...(PROF ? { prof: PROF } : {}) });
  const endpoint = gw.match!;
  const shoal = await ShoalClient.connect({ servers: url }, { timeoutMs: 10_000 });
  for (let i = 0; i < 400; i++) {
    try {
      await shoal.createBucket("bench", { replicas });
      break;
    } catch {
      await sleep(100);
    }
  }
  say("servers up; writing");
  const body = randomBytes(BIG);
  await shoal.put("bench", "big", Readable.from((function* () { for (let o = 0; o < BIG; o += MiB) yield body.subarray(o, o + MiB); })()));
  const got = await shoal.getBytes("bench", "big");
  if (Buffer.compare(Buffer.from(got), body) !== 0) throw new Error("read back differs");

  const nc = await connect({ servers: url, user: auth.appUser, pass: auth.appPassword });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const stream = "OBJ_bench";
  const metaMsg = await jsm.streams.getMessage(stream, { last_by_subj: metaSubject("bench", "big") });
  const meta = decodeStoredMeta(metaMsg!.data);
  const subj = chunkSubject("bench", meta.nuid);
  const seqs: number[] = [];
  {
    const c = await js.consumers.get(stream, { filter_subjects: subj, headers_only: true });
    for await (const m of await c.fetch({ max_messages: 100_000, expires: 2000 })) {
      seqs.push(m.seq);
      if (m.info.pending === 0) break;
    }
  }

  // the gateway, signed by the SDK's presigner
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const { GetObjectCommand } = await import("@aws-sdk/client-s3");
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: KEYS.accessKey, secretAccessKey: KEYS.secretKey } });
  const signedBig = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "bench", Key: "big" }), { expiresIn: 3600 });

  const cpuOf = { actor: actor.child.pid!, gateway: gw.child.pid!, ...Object.fromEntries(servers.map((s, i) => [`nats${i}`, s.pid!])) } as Record<string, number>;
  const spent: Record<string, Record<string, number[]>> = {};
  const timed = (path: string, fn: () => Promise<unknown>) => async () => {
    const before = Object.fromEntries(Object.entries(cpuOf).map(([k, p]) => [k, cpuSeconds(p)]));
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    await within(path, 60_000, fn);
    say(`${path}: ${(BIG / MiB / ((performance.now() - t0) / 1000)).toFixed(0)} MB/s`);
    const self = process.cpuUsage(self0);
    const s = (spent[path] ??= {});
    for (const [k, p] of Object.entries(cpuOf)) (s[k] ??= []).push(cpuSeconds(p) - before[k]!);
    (s["client"] ??= []).push((self.user + self.system) / 1e6);
  };
  const drain = async (it: AsyncIterable<Uint8Array>) => {
    let n = 0;
    for await (const c of it) n += c.byteLength;
    if (n !== BIG) throw new Error(`read ${n} of ${BIG}`);
  };
  say("reading");
  const before = load();
  const paths = {
    // what an ordered consumer is on the server (ephemeral, R1, in memory, no acks), made by hand:
    // @nats-io/jetstream 3.4's ordered consumer stalled here on a second read of the same subject
    "raw consumer": timed("raw consumer", async () => {
      const ci = await jsm.consumers.add(stream, { filter_subject: subj, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, mem_storage: true, num_replicas: 1, inactive_threshold: 30_000_000_000 });
      try {
        const c = await js.consumers.get(stream, ci.name);
        let n = 0;
        for await (const m of await c.consume({ max_messages: 16 })) if ((n += m.data.byteLength) >= BIG) break;
        if (n !== BIG) throw new Error(`consumer read ${n}`);
      } finally {
        await jsm.consumers.delete(stream, ci.name).catch(() => undefined);
      }
    }),
    "raw readSeqs 16×4": timed("raw readSeqs 16×4", () => drain((async function* () { for await (const m of readSeqs(jsm, stream, subj, seqs, { windowMsgs: 16, inflight: 4 })) yield m.data; })())),
    "Shoal NATS API": timed("Shoal NATS API", async () => drain((await shoal.get("bench", "big")).body)),
    "S3 gateway (HTTP GET)": timed("S3 gateway (HTTP GET)", async () => {
      const n = await httpGetBytes(signedBig);
      if (n !== BIG) throw new Error(`gateway read ${n}`);
    }),
  };
  const r = await mbpsInTurns(Object.fromEntries(Object.entries(paths).map(([k, f]) => [k, () => f()])) as Record<keyof typeof paths, () => Promise<void>>, { runs: RUNS, bytes: BIG });
  const best = Math.max(r["raw consumer"], r["raw readSeqs 16×4"]);
  out.push(`\nGET path — ${new Date().toISOString()} — R${replicas}, ${BIG / MiB} MiB, ${meta.options?.max_chunk_size ?? "?"} B chunks, median of ${RUNS} in turns after a warm-up; load ${before} → ${load()}`);
  out.push("", "| path | MB/s | vs best raw | CPU s per GET: " + Object.keys(cpuOf).join(" / ") + " / client |", "|---|---|---|---|");
  for (const [k, v] of Object.entries(r) as Array<[string, number]>) {
    const s = spent[k]!;
    out.push(`| ${k} | ${v.toFixed(0)} | ${(v / best).toFixed(2)} | ${[...Object.keys(cpuOf), "client"].map((p) => median(s[p]!.slice(1)).toFixed(2)).join(" / ")} |`);
  }
  out.push(`| gateway / NATS API | | ${(r["S3 gateway (HTTP GET)"] / r["Shoal NATS API"]).toFixed(2)} | |`);

  if (process.env["BENCH_SMALL"] !== "0") {
    const objm = new Objm(nc);
    const stock = await objm.create("stocksmall");
    await roomForStockGets(await jetstreamManager(nc), "stocksmall");
    const keys = 200;
    const small = randomBytes(4096);
    for (let i = 0; i < keys; i++) {
      await stock.putBlob({ name: `k${i}` }, small);
      await shoal.put("bench", `s${i}`, small);
    }
    // stock leaves a consumer behind per get (bench/stock.ts: its stream has room for them);
    // its rate counts only the gets that returned the object
    let stockOk = 0;
    let stockErr = 0;
    const o = { n: QUICK ? 400 : 2000, concurrency: 16 };
    const shoalGet = (i: number) => shoal.getBytes("bench", `s${i % keys}`);
    const stockGet = (i: number) => stock.getBlob(`k${i % keys}`).then((b) => void (b?.byteLength === 4096 ? stockOk++ : stockErr++), () => void stockErr++);
    await opsPerSecond(200, 16, shoalGet);
    await opsPerSecond(200, 16, stockGet);
    const cpu0 = process.cpuUsage();
    const shoalOps = await opsPerSecond(o.n, o.concurrency, shoalGet);
    const shoalCpu = process.cpuUsage(cpu0);
    stockOk = 0;
    stockErr = 0;
    const stockCalls = await opsPerSecond(o.n, o.concurrency, stockGet);
    const stockOps = (stockCalls * stockOk) / o.n;
    out.push("", `| 4 KiB GET c16 (load ${load()}) | ops/s | vs stock |`, "|---|---|---|");
    out.push(`| Shoal (ShoalClient.getBytes; client CPU ${(((shoalCpu.user + shoalCpu.system) / 1e3) / o.n).toFixed(2)} ms/op) | ${shoalOps.toFixed(0)} | ${(shoalOps / stockOps).toFixed(2)} |`);
    out.push(`| stock @nats-io/obj getBlob, successful gets only${stockErr ? ` (${stockErr} of ${o.n} failed)` : ""} | ${stockOps.toFixed(0)} | 1.00 |`);
  }
  console.log(out.join("\n"));
  s3.destroy();
  await nc.close();
  await shoal.close();
  await stopStarted({ procs, servers, dirs }, 1500);
} finally {
  await removeStarted({ procs, servers, dirs });
}
