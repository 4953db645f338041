#!/usr/bin/env node
// small.mjs — 4 KiB PUT then GET at concurrency C against any S3 endpoint,
// with a client cheap enough not to be the limit: every request is presigned
// (SigV4 query, UNSIGNED-PAYLOAD) BEFORE the clock starts, then sent with
// node:http over C keep-alive connections. Prints one JSON line like
// s3bench.py's (label, put4k_ops, get4k_ops, p50/p99, cpu_s per phase of the
// client and the watched pids), so summary tools read both.
//
//   node scripts/peer/small.mjs ENDPOINT ACCESS SECRET BUCKET LABEL [--conc 16] [--ops 2000] [--warm 200] [--watch NAME=PID ...]
//
// The bucket is created if it does not exist (and then removed at the end);
// objects written are deleted at the end.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { randomBytes } from "node:crypto";
import { S3Client, PutObjectCommand, GetObjectCommand, DeleteObjectsCommand, CreateBucketCommand, DeleteBucketCommand, HeadBucketCommand } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const [endpoint, access, secret, bucket, label, ...rest] = process.argv.slice(2);
if (!label) {
  console.error("usage: small.mjs ENDPOINT ACCESS SECRET BUCKET LABEL [--conc N] [--ops N] [--warm N] [--watch NAME=PID ...]");
  process.exit(2);
}
const opt = { conc: 16, ops: 2000, warm: 200 };
const watch = {};
for (let i = 0; i < rest.length; i += 2) {
  const k = rest[i].replace(/^--/, "");
  if (k === "watch") {
    const [n, p] = rest[i + 1].split("=");
    watch[n] = Number(p);
  } else opt[k] = Number(rest[i + 1]);
}
const tick = 100; // USER_HZ on Linux
const cpuOf = (pid) => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) / tick;
  } catch {
    return NaN;
  }
};
const snapshot = () => {
  const u = process.cpuUsage();
  return { client: (u.user + u.system) / 1e6, ...Object.fromEntries(Object.entries(watch).map(([n, p]) => [n, cpuOf(p)])) };
};
const diff = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, Math.round((b[k] - a[k]) * 100) / 100]));

const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: access, secretAccessKey: secret } });
const agent = new Agent({ keepAlive: true, maxSockets: opt.conc });
const body = randomBytes(4096);
const keys = (p, n) => Array.from({ length: n }, (_, i) => `small-node/${p}-${String(i).padStart(5, "0")}`);
const presign = (cmd) => getSignedUrl(s3, cmd, { expiresIn: 3600 });

function send(url, method, payload) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: payload ? { "content-length": payload.byteLength } : {} }, (res) => {
      let n = 0;
      res.on("data", (c) => (n += c.byteLength));
      res.on("end", () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${method} ${res.statusCode}`))));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(payload);
  });
}

async function run(urls, method) {
  const lats = [];
  let next = 0;
  let errors = 0;
  let firstError;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opt.conc }, async () => {
    while (next < urls.length) {
      const u = urls[next++];
      const t = performance.now();
      try {
        const n = await send(u, method, method === "PUT" ? body : undefined);
        if (method === "GET" && n !== 4096) throw new Error(`short read ${n}`);
        lats.push(performance.now() - t);
      } catch (e) {
        errors++;
        firstError ??= String(e).slice(0, 200);
      }
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  lats.sort((a, b) => a - b);
  const pct = (p) => Math.round(lats[Math.min(lats.length - 1, Math.round((p / 100) * (lats.length - 1)))] * 100) / 100;
  return { ops: Math.round((lats.length / wall) * 10) / 10, p50: pct(50), p99: pct(99), errors, firstError };
}

const res = { label, endpoint, bucket, client: "node:http + presigned URLs", conc: opt.conc, started: new Date().toISOString(), cpu_s: {} };
const made = await s3.send(new HeadBucketCommand({ Bucket: bucket })).then(() => false, async () => {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return true;
});
const warm = keys("warm", opt.warm);
const timed = keys("obj", opt.ops);
const all = [...warm, ...timed];
const putUrls = await Promise.all(all.map((k) => presign(new PutObjectCommand({ Bucket: bucket, Key: k }))));
const getUrls = await Promise.all(all.map((k) => presign(new GetObjectCommand({ Bucket: bucket, Key: k }))));
for (const [phase, urls, method] of [["put4k", putUrls, "PUT"], ["get4k", getUrls, "GET"]]) {
  await run(urls.slice(0, opt.warm), method);
  const a = snapshot();
  const r = await run(urls.slice(opt.warm), method);
  res.cpu_s[phase] = diff(a, snapshot());
  res[`${phase}_ops`] = r.ops;
  res[`${phase}_p50_ms`] = r.p50;
  res[`${phase}_p99_ms`] = r.p99;
  if (r.errors) {
    res[`${phase}_errors`] = r.errors;
    res[`${phase}_first_error`] = r.firstError;
  }
  console.error(`[small.mjs] ${label} ${phase}: ${r.ops} ops/s, p50 ${r.p50} ms, p99 ${r.p99} ms, errors ${r.errors}, CPU ${JSON.stringify(res.cpu_s[phase])}`);
}
for (let i = 0; i < all.length; i += 1000) {
  await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: all.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } })).catch((e) => console.error(`cleanup: ${e}`));
}
if (made) await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch((e) => console.error(`cleanup: ${e}`));
agent.destroy();
s3.destroy();
console.log(JSON.stringify(res));
