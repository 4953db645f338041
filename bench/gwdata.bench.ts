/**
 * CPU per byte of the S3 gateway's large-object data path (issue 19): 64 MiB
 * GETs and PUTs through the gateway over plain node:http (presigned URLs,
 * signed before the clock starts, so the client costs little), with the CPU
 * seconds every process spent per operation (/proc utime+stime): the
 * gateway, the storage actor, nats-server and the client.
 *
 * A/B in one run: with BENCH_COMPARE_ROOT=<checkout of another commit,
 * node_modules linked in> a second gateway from that checkout serves the
 * same nats-server and storage actor, and the two take turns op by op
 * ("A" = the checkout, "B" = this tree), so a slow spell of the shared
 * machine hits both alike.
 *
 * "sdkput" (in BENCH_OPS) is a PUT by the AWS SDK v3 with a stream body: its default
 * upload form, aws-chunked with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
 *
 *   npm run bench -- gwdata    BENCH_RUNS=n (default 7) · BENCH_MIB=64 · BENCH_OPS=get,put[,sdkput]
 *                              BENCH_PROF=DIR (node --cpu-prof of the gateway(s)) · BENCH_COMPARE_ROOT=DIR
 *                              BENCH_NATS_PPROF=DIR (nats-server's CPU profile, /debug/pprof, over each op's
 *                              timed runs: DIR/<op>.pb.gz; read it with bench/pprof-top.py)
 *                              BENCH_A_ENV / BENCH_B_ENV="K=V …" (environment of gateway A / B: A/B a setting
 *                              within one checkout with BENCH_COMPARE_ROOT=.) · BENCH_GW_NODE_ARGS · BENCH_GW_LOG
 */
import { type ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { S3Client, GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { median } from "./turns.ts";
import { NatsServer } from "../src/engine/server.ts";
import { ShoalClient } from "../src/client/index.ts";
import { BENCH_AUTH, BENCH_KEYS, cleanUpOnSignal, removeStarted, stopStarted, within } from "./lifetime.ts";
import { cpuSeconds, httpGetBytes, shoalStart, sysSeconds } from "./actor.ts";

const MiB = 1024 * 1024;
const SIZE = Number(process.env["BENCH_MIB"] ?? 64) * MiB;
const RUNS = Number(process.env["BENCH_RUNS"] ?? 7);
const OPS = (process.env["BENCH_OPS"] ?? "get,put").split(",");
const PROF = process.env["BENCH_PROF"];
const COMPARE = process.env["BENCH_COMPARE_ROOT"];
/** Extra node flags for the gateway(s), e.g. "--trace-gc" (its stdout then goes to BENCH_GW_LOG). */
const GW_NODE_ARGS = (process.env["BENCH_GW_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
const GW_LOG = process.env["BENCH_GW_LOG"];
const NATS_PPROF = process.env["BENCH_NATS_PPROF"];
/** Extra environment for gateway A / B ("K=V K2=V2"), e.g. to A/B a setting within one checkout. */
const envOf = (v: string | undefined) => Object.fromEntries((v ?? "").split(" ").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
const GW_ENV: Record<string, Record<string, string>> = { A: envOf(process.env["BENCH_A_ENV"]), B: envOf(process.env["BENCH_B_ENV"]) };
const auth = BENCH_AUTH;
const KEYS = BENCH_KEYS;
const root = new URL("../", import.meta.url).pathname;
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const servers: NatsServer[] = [];
const load = () => loadavg()[0]!.toFixed(1);
const say = (m: string) => process.stderr.write(`[gwdata ${new Date().toISOString().slice(11, 19)}] ${m}\n`);



/** A PUT of `body` in 1 MiB writes, honouring the socket's back-pressure. */
function httpPut(url: string, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "PUT", headers: { "content-length": body.byteLength } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${res.statusCode}: ${text.slice(0, 300)}`))));
    });
    req.on("error", reject);
    let o = 0;
    const pump = () => {
      while (o < body.byteLength) {
        const piece = body.subarray(o, o + MiB);
        o += piece.byteLength;
        if (!req.write(piece)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}


cleanUpOnSignal({ procs, servers, dirs }); // killed (timeout, ^C): stop what this bench started

try {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
  dirs.push(dir);
  let profPort = 0;
  if (NATS_PPROF) {
    const probe = (await import("node:net")).createServer().listen(0, "127.0.0.1");
    await new Promise((r) => probe.once("listening", r));
    profPort = (probe.address() as { port: number }).port;
    probe.close();
    mkdirSync(NATS_PPROF, { recursive: true });
  }
  servers.push(new NatsServer({ name: "gw1", dir, auth, maxFileStore: "40GB", ...(NATS_PPROF ? { extra: [`prof_port: ${profPort}`] } : {}) }));
  await servers[0]!.start();
  const url = servers[0]!.url;
  const actor = await shoalStart({ cwd: root, args: ["--actors", "storage", "--nats", url], procs, keys: KEYS });
  const gateways: Array<{ name: string; pid: number; s3: S3Client }> = [];
  for (const [name, cwd] of [...(COMPARE ? [["A", COMPARE]] : []), [COMPARE ? "B" : "gateway", root]] as Array<[string, string]>) {
    const g = await shoalStart({
      cwd,
      args: ["--gateway", "--nats", url],
      procs,
      keys: KEYS,
      waitFor: /^S3: (http:\S+)$/m,
      ...(PROF ? { prof: join(PROF, name) } : {}),
      nodeArgs: GW_NODE_ARGS,
      env: GW_ENV[name] ?? {},
      onOutput: (c) => {
        if (GW_LOG && GW_NODE_ARGS.length) appendFileSync(GW_LOG, c);
      },
    });
    const s3 = new S3Client({ endpoint: g.match!, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: KEYS.accessKey, secretAccessKey: KEYS.secretKey } });
    gateways.push({ name, pid: g.child.pid!, s3 });
  }
  const shoal = await ShoalClient.connect({ servers: url }, { timeoutMs: 10_000 });
  for (let i = 0; i < 400; i++) {
    try {
      await shoal.createBucket("bench", { replicas: 1 });
      break;
    } catch {
      await sleep(100);
    }
  }
  const body = randomBytes(SIZE);
  await shoal.put("bench", "big", body);
  say(`servers up (load ${load()})`);

  type Row = { mbps: number[]; cpu: Record<string, number[]> };
  const rows = new Map<string, Row>();
  const procsOf = (g: { name: string; pid: number }) => ({ gateway: g.pid, actor: actor.child.pid!, nats: servers[0]!.pid! });
  const once = async (label: string, g: { name: string; pid: number }, fn: () => Promise<void>, record: boolean) => {
    const ps = procsOf(g);
    const before = Object.fromEntries(Object.entries(ps).map(([k, p]) => [k, cpuSeconds(p)]));
    const sysBefore = Object.fromEntries(Object.entries(ps).map(([k, p]) => [k, sysSeconds(p)]));
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    await within(label, 120_000, fn);
    const secs = (performance.now() - t0) / 1000;
    const self = process.cpuUsage(self0);
    if (!record) return;
    const r = rows.get(label) ?? { mbps: [], cpu: {} };
    rows.set(label, r);
    r.mbps.push(SIZE / MiB / secs);
    for (const [k, p] of Object.entries(ps)) {
      (r.cpu[k] ??= []).push(cpuSeconds(p) - before[k]!);
      (r.cpu[`${k}-sys`] ??= []).push(sysSeconds(p) - sysBefore[k]!);
    }
    (r.cpu["client"] ??= []).push((self.user + self.system) / 1e6);
  };
  const loadBefore = load();
  for (const op of OPS) {
    const signed = new Map<string, string>();
    for (const g of gateways) {
      if (op === "sdkput") continue;
      const cmd = op === "get" ? new GetObjectCommand({ Bucket: "bench", Key: "big" }) : new PutObjectCommand({ Bucket: "bench", Key: `put-${g.name}` });
      signed.set(g.name, await getSignedUrl(g.s3, cmd, { expiresIn: 3600 }));
    }
    const run = async (g: { name: string; pid: number; s3: S3Client }, record: boolean) => {
      const u = signed.get(g.name)!;
      await once(`${op} ${g.name}`, g, async () => {
        if (op === "get") {
          const n = await httpGetBytes(u);
          if (n !== SIZE) throw new Error(`GET read ${n} of ${SIZE}`);
        } else if (op === "sdkput") {
          const pieces = Readable.from((function* () { for (let o = 0; o < SIZE; o += MiB) yield body.subarray(o, o + MiB); })());
          await g.s3.send(new PutObjectCommand({ Bucket: "bench", Key: `sdkput-${g.name}`, Body: pieces, ContentLength: SIZE }));
        } else await httpPut(u, body);
      }, record);
    };
    for (const g of gateways) await run(g, false); // warm-up
    // nats-server's CPU profile over the timed runs: started now, ended (by its duration) near their end
    const t0 = performance.now();
    let prof: Promise<unknown> | undefined;
    const profile = (secs: number) =>
      fetch(`http://127.0.0.1:${profPort}/debug/pprof/profile?seconds=${secs}`)
        .then(async (r) => writeFileSync(join(NATS_PPROF!, `${op}.pb.gz`), Buffer.from(await r.arrayBuffer())))
        .catch((e) => say(`nats-server profile: ${e}`));
    for (let i = 0; i < RUNS; i++) {
      for (const g of i % 2 ? [...gateways].reverse() : gateways) await run(g, true);
      // after the first round, profile for about the time the rest will take
      if (NATS_PPROF && i === 0 && RUNS > 2) prof = profile(Math.max(1, Math.round(((performance.now() - t0) / 1000) * (RUNS - 1))));
    }
    await prof;
    say(`${op} done (load ${load()})`);
  }
  // the PUTs read back byte for byte
  for (const op of OPS.filter((o) => o !== "get")) {
    for (const g of gateways) if (Buffer.compare(Buffer.from(await shoal.getBytes("bench", `${op}-${g.name}`)), body) !== 0) throw new Error(`${op}-${g.name} reads back different bytes`);
  }

  const out: string[] = [];
  out.push(`\nS3 gateway data path — ${new Date().toISOString()} — R1, ${SIZE / MiB} MiB over node:http (presigned), median of ${RUNS}${COMPARE ? `, gateways A (${COMPARE}) and B (this tree) in turns` : ""}; load ${loadBefore} → ${load()}`);
  out.push("", "| op | MB/s | CPU s per op: gateway / actor / nats-server / client | of which system time: gateway / nats-server | gateway CPU s per GiB | gateway CPU s, quartiles |", "|---|---|---|---|---|---|");
  for (const [label, r] of rows) {
    const c = (k: string) => median(r.cpu[k]!);
    const g = [...r.cpu["gateway"]!].sort((a, b) => a - b);
    const q = (f: number) => g[Math.min(g.length - 1, Math.floor(f * g.length))]!.toFixed(2);
    out.push(`| ${label} | ${median(r.mbps).toFixed(0)} | ${["gateway", "actor", "nats", "client"].map((k) => c(k).toFixed(3)).join(" / ")} | ${["gateway-sys", "nats-sys"].map((k) => c(k).toFixed(3)).join(" / ")} | ${((c("gateway") * 1024 * MiB) / SIZE).toFixed(2)} | ${q(0.25)} / ${q(0.5)} / ${q(0.75)} |`);
  }
  console.log(out.join("\n"));
  for (const g of gateways) g.s3.destroy();
  await shoal.close();
  await stopStarted({ procs, servers, dirs }, 2000);
} finally {
  await removeStarted({ procs, servers, dirs });
}
