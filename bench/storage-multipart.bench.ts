/**
 * Issue 15's multipart row: a 1 GiB object through the S3 gateway with the
 * AWS SDK v3, as one PutObject stream and as a multipart upload of 16 MiB
 * parts (4 in flight, as @aws-sdk/lib-storage does), in turns; the
 * completion's own time; the storage actor's and the gateway's peak RSS
 * (each runs in its own `shoal start` process). The completion composes
 * the parts without copying (src/store/compose.ts); the bench then waits
 * until stock @nats-io/obj sees the object (the background copy into the
 * stock form) and reports that time too, before the next run starts.
 *
 *   npm run bench -- storage-multipart     BENCH_QUICK=1 (256 MiB) · BENCH_RUNS=n (default 2)
 */
import { dirMaker } from "./lifetime.ts";
import type { ChildProcess } from "node:child_process";
import { shoalStart } from "./actor.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { S3Client, CreateBucketCommand, PutObjectCommand, CreateMultipartUploadCommand, UploadPartCommand, CompleteMultipartUploadCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { NatsServer } from "../src/engine/server.ts";
import { connect } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";

const QUICK = process.env["BENCH_QUICK"] === "1";
const MiB = 1024 * 1024;
const HUGE = (QUICK ? 256 : 1024) * MiB;
const PART = 16 * MiB;
const RUNS = Number(process.env["BENCH_RUNS"] ?? 2);
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };
const KEYS = { accessKey: "BENCHKEY", secretKey: "bench-secret-key-0123456789" };
const root = new URL("../", import.meta.url).pathname;
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const tmp = dirMaker(dirs);
const load = () => loadavg().map((x) => x.toFixed(1)).join(" ");
const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
const resetPeakRss = (pid: number) => writeFileSync(`/proc/${pid}/clear_refs`, "5");
const block = randomBytes(MiB);
const bytes = (n: number) => Readable.from((function* () { for (let o = 0; o < n; o += MiB) yield block; })());

/** `shoal start <args>` (bench/actor.ts shoalStart) with this bench's keys and process list. */
const shoalProcess = (args: string[], waitFor?: RegExp) => shoalStart({ cwd: root, args, procs, keys: KEYS, ...(waitFor ? { waitFor } : {}) });

try {
  const srv = new NatsServer({ name: "m1", dir: tmp(), auth, maxFileStore: "40GB" });
  await srv.start();
  const actor = await shoalProcess(["--actors", "storage", "--nats", srv.url]);
  const gw = await shoalProcess(["--gateway", "--nats", srv.url], /^S3: (http:\S+)$/m);
  const nc = await connect({ servers: srv.url });
  /** Seconds until stock @nats-io/obj sees `key` (the composed object's background copy). */
  const stockVisible = async (key: string): Promise<number> => {
    const os = await new Objm(nc).open("mpbench");
    const t = performance.now();
    for (let i = 0; i < 6000; i++) {
      if ((await os.info(key))?.deleted === false) return (performance.now() - t) / 1000;
      await sleep(50);
    }
    throw new Error(`${key} never became visible to stock tools`);
  };
  const c = new S3Client({ endpoint: gw.match!, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: KEYS.accessKey, secretAccessKey: KEYS.secretKey } });
  for (let i = 0; i < 200; i++) {
    try {
      await c.send(new CreateBucketCommand({ Bucket: "mpbench" }));
      break;
    } catch {
      await sleep(100);
    }
  }
  const single = async (key: string) => void (await c.send(new PutObjectCommand({ Bucket: "mpbench", Key: key, Body: bytes(HUGE), ContentLength: HUGE })));
  const multipart = async (key: string): Promise<number> => {
    const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: "mpbench", Key: key }));
    const n = HUGE / PART;
    const etags: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      for (let p = next++; p < n; p = next++) {
        const r = await c.send(new UploadPartCommand({ Bucket: "mpbench", Key: key, UploadId, PartNumber: p + 1, Body: bytes(PART), ContentLength: PART }));
        etags[p] = r.ETag!;
      }
    }));
    const t = performance.now();
    await c.send(new CompleteMultipartUploadCommand({ Bucket: "mpbench", Key: key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
    return performance.now() - t;
  };
  const rows: Array<{ single: number; multi: number; complete: number; stock: number }> = [];
  const before = load();
  resetPeakRss(actor.child.pid!);
  resetPeakRss(gw.child.pid!);
  for (let r = 0; r < RUNS; r++) {
    let t = performance.now();
    await single(`single${r}`);
    const s = (performance.now() - t) / 1000;
    t = performance.now();
    const complete = await multipart(`multi${r}`);
    const m = (performance.now() - t) / 1000;
    const head = await c.send(new HeadObjectCommand({ Bucket: "mpbench", Key: `multi${r}` }));
    if (head.ContentLength !== HUGE) throw new Error(`multipart object is ${head.ContentLength} bytes`);
    const stock = await stockVisible(`multi${r}`);
    rows.push({ single: HUGE / MiB / s, multi: HUGE / MiB / m, complete, stock });
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const s = med(rows.map((x) => x.single));
  const m = med(rows.map((x) => x.multi));
  console.log(`\nShoal multipart through the S3 gateway — ${new Date().toISOString()} — ${HUGE / MiB} MiB, ${PART / MiB} MiB parts ×4 in flight, ${RUNS} runs in turns (load average ${before} → ${load()})\n`);
  console.log("| path | MB/s (median) | vs single PUT | completion | stock tools see it after the completion's answer |", "\n|---|---|---|---|---|");
  console.log(`| single PutObject stream | ${s.toFixed(0)} | 1.00 | — | at once |`);
  console.log(`| multipart (UploadPart ×${HUGE / PART}, then Complete) | ${m.toFixed(0)} | ${(m / s).toFixed(2)} | ${rows.map((x) => (x.complete / 1000).toFixed(3)).join(" / ")} s | ${rows.map((x) => x.stock.toFixed(1)).join(" / ")} s |`);
  console.log(`\npeak RSS: storage actor ${peakRss(actor.child.pid!).toFixed(0)} MiB, gateway ${peakRss(gw.child.pid!).toFixed(0)} MiB`);
  c.destroy();
  await nc.close();
  for (const p of procs) p.kill("SIGTERM");
  await sleep(500);
  await srv.stop();
} finally {
  for (const p of procs) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
