/**
 * The S3 gateway, driven by @aws-sdk/client-s3, against (a) Shoal's NATS API
 * (the SDK, same servers, same run) and (b) s3rver, a filesystem S3 server,
 * driven the same way. The gateway and the storage actor each run in their
 * own process (`shoal start`), so the gateway's peak RSS is its own.
 *
 *   npm run bench -- gateway          (BENCH_QUICK=1 for a short run)
 */
import { dirMaker } from "./lifetime.ts";
import type { ChildProcess } from "node:child_process";
import { shoalStart } from "./actor.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import S3rver from "s3rver";
import { mbpsInTurns, opsInTurns } from "./turns.ts";
import { NatsServer } from "../src/engine/server.ts";
import { ShoalClient } from "../src/client/index.ts";

const QUICK = process.env["BENCH_QUICK"] === "1";
const MiB = 1024 * 1024;
const BIG = (QUICK ? 16 : 64) * MiB;
const RUNS = QUICK ? 1 : 3;
const HUGE = (QUICK ? 256 : 1024) * MiB;
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const KEYS = { accessKey: "BENCHKEY", secretKey: "bench-secret-key-0123456789" };
const root = new URL("../", import.meta.url).pathname;
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const tmp = dirMaker(dirs);
const body = randomBytes(BIG);
const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
/** Starts a new peak: Linux resets VmHWM to the current RSS on `5` in clear_refs (proc(5)). */
const resetPeakRss = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, "5");

function s3(endpoint: string, creds = KEYS) {
  return new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: creds.accessKey, secretAccessKey: creds.secretKey } });
}

/** `shoal start …` in its own process; resolves with its stdout's S3 URL when asked for. */
/** `shoal start <args>` (bench/actor.ts shoalStart) with this bench's keys and process list. */
const shoalProcess = (args: string[], waitFor?: RegExp) => shoalStart({ cwd: root, args, procs, keys: KEYS, ...(waitFor ? { waitFor } : {}) });

async function drain(b: unknown): Promise<number> {
  let n = 0;
  for await (const c of b as AsyncIterable<Uint8Array>) n += c.byteLength;
  return n;
}

/** 4 KiB PUT then GET ops/s at concurrency `conc` against each S3 endpoint (bench/turns.ts: warmed up, in turns). */
async function smallOps(targets: Record<"gw" | "rv", S3Client>, bucket: string, conc: number): Promise<Record<"gw" | "rv", { put: number; get: number }>> {
  const data = randomBytes(4096);
  const o = { n: QUICK ? 300 : 2000, concurrency: conc, warm: 200 };
  const put = (c: S3Client) => (i: number) => c.send(new PutObjectCommand({ Bucket: bucket, Key: `s/${i}`, Body: data }));
  const get = (c: S3Client) => async (i: number) => drain((await c.send(new GetObjectCommand({ Bucket: bucket, Key: `s/${i}` }))).Body);
  const puts = await opsInTurns({ gw: put(targets.gw), rv: put(targets.rv) }, o);
  const gets = await opsInTurns({ gw: get(targets.gw), rv: get(targets.rv) }, o);
  return { gw: { put: puts.gw, get: gets.gw }, rv: { put: puts.rv, get: gets.rv } };
}

const out: string[] = [];
try {
  const srv = new NatsServer({ name: "g1", dir: tmp(), auth, maxFileStore: "40GB" });
  await srv.start();
  await shoalProcess(["--actors", "storage", "--nats", srv.url]);
  const gw = await shoalProcess(["--gateway", "--nats", srv.url], /^S3: (http:\S+)$/m);
  const endpoint = gw.match!;
  const shoal = await ShoalClient.connect({ servers: srv.url }, { timeoutMs: 10_000 });
  for (let i = 0; i < 200; i++) {
    try {
      await shoal.listBuckets();
      break;
    } catch {
      await sleep(50);
    }
  }
  const gwc = s3(endpoint);
  await gwc.send(new CreateBucketCommand({ Bucket: "bench" }));

  // s3rver on a free port, files in a temp dir
  const s3rver = new S3rver({ port: 0, address: "127.0.0.1", silent: true, directory: tmp(), configureBuckets: [{ name: "bench", configs: [] }] });
  const addr = (await s3rver.run()) as unknown as { port: number };
  const s3rc = s3(`http://127.0.0.1:${addr.port}`, { accessKey: "S3RVER", secretKey: "S3RVER" });

  const apiBody = () => Readable.from((function* () { for (let o = 0; o < BIG; o += MiB) yield body.subarray(o, o + MiB); })());
  const sizes = { runs: RUNS, bytes: BIG };
  const puts = await mbpsInTurns({
    gw: (i) => gwc.send(new PutObjectCommand({ Bucket: "bench", Key: `big${i}`, Body: body })).then(() => undefined),
    api: async (i) => void (await shoal.put("bench", `api${i}`, apiBody())),
    rv: (i) => s3rc.send(new PutObjectCommand({ Bucket: "bench", Key: `big${i}`, Body: body })).then(() => undefined),
  }, sizes);
  const gets = await mbpsInTurns({
    gw: async () => void (await drain((await gwc.send(new GetObjectCommand({ Bucket: "bench", Key: "big0" }))).Body)),
    api: async () => void (await drain((await shoal.get("bench", "api0")).body)),
    rv: async () => void (await drain((await s3rc.send(new GetObjectCommand({ Bucket: "bench", Key: "big0" }))).Body)),
  }, sizes);
  const [gwPut, apiPut, rvPut, gwGet, apiGet, rvGet] = [puts.gw, puts.api, puts.rv, gets.gw, gets.api, gets.rv];

  const small = await smallOps({ gw: gwc, rv: s3rc }, "bench", 16);
  const [gwSmall, rvSmall] = [small.gw, small.rv];

  // the gateway's peak so far (the 64 MiB and small-object runs), then a new peak for the 1 GiB run
  const peakBefore = peakRss(gw.child.pid!);
  resetPeakRss(gw.child.pid!);
  // 1 GiB up (multipart) and down through the gateway; its peak RSS
  const hugeSha = createHash("sha256");
  const src = Readable.from((function* () {
    const block = randomBytes(MiB);
    for (let o = 0; o < HUGE; o += MiB) {
      hugeSha.update(block);
      yield block;
    }
  })());
  const t0 = performance.now();
  await new Upload({ client: gwc, params: { Bucket: "bench", Key: "huge", Body: src }, partSize: 16 * MiB, queueSize: 4 }).done();
  const upS = (performance.now() - t0) / 1000;
  const rssUp = peakRss(gw.child.pid!);
  resetPeakRss(gw.child.pid!);
  const t1 = performance.now();
  const downSha = createHash("sha256");
  for await (const c of (await gwc.send(new GetObjectCommand({ Bucket: "bench", Key: "huge" }))).Body as AsyncIterable<Uint8Array>) downSha.update(c);
  const downS = (performance.now() - t1) / 1000;
  const rssDown = peakRss(gw.child.pid!);
  const rss = Math.max(rssUp, rssDown);
  const same = downSha.digest("hex") === hugeSha.digest("hex");

  out.push(`\nShoal S3 gateway benchmark — ${new Date().toISOString()} — ${BIG / MiB} MiB objects, median of ${RUNS} after a warm-up, paths in turns${QUICK ? " (BENCH_QUICK)" : ""}; client: @aws-sdk/client-s3 (default checksums)`);
  out.push("", "| path | PUT MB/s | GET MB/s | PUT vs NATS API | GET vs NATS API | PUT vs s3rver | GET vs s3rver |", "|---|---|---|---|---|---|---|");
  const row = (n: string, p: number, g: number) => out.push(`| ${n} | ${p.toFixed(0)} | ${g.toFixed(0)} | ${(p / apiPut).toFixed(2)} | ${(g / apiGet).toFixed(2)} | ${(p / rvPut).toFixed(2)} | ${(g / rvGet).toFixed(2)} |`);
  row("Shoal NATS API (SDK)", apiPut, apiGet);
  row("**Shoal S3 gateway**", gwPut, gwGet);
  row("s3rver (filesystem)", rvPut, rvGet);
  out.push("", "| 4 KiB objects, concurrency 16 | Shoal gateway | s3rver | ratio |", "|---|---|---|---|");
  out.push(`| PUT ops/s | ${gwSmall.put.toFixed(0)} | ${rvSmall.put.toFixed(0)} | ${(gwSmall.put / rvSmall.put).toFixed(2)} |`);
  out.push(`| GET ops/s | ${gwSmall.get.toFixed(0)} | ${rvSmall.get.toFixed(0)} | ${(gwSmall.get / rvSmall.get).toFixed(2)} |`);
  out.push("", "| measurement | result |", "|---|---|");
  out.push(`| gateway peak RSS through the 64 MiB and 4 KiB runs above | ${peakBefore.toFixed(0)} MiB |`);
  out.push(`| ${HUGE / MiB} MiB object up (multipart) and down through the gateway: gateway peak RSS | ${rss.toFixed(0)} MiB (up ${rssUp.toFixed(0)}, down ${rssDown.toFixed(0)}; up ${(HUGE / MiB / upS).toFixed(0)} MB/s, down ${(HUGE / MiB / downS).toFixed(0)} MB/s, ${same ? "bytes match" : "BYTES DIFFER"}) |`);
  console.log(out.join("\n"));
  gwc.destroy();
  s3rc.destroy();
  await s3rver.close();
  await shoal.close();
  for (const p of procs) p.kill("SIGTERM");
  await sleep(500);
  await srv.stop();
} finally {
  for (const p of procs) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
