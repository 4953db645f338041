/**
 * Shoal's S3 gateway next to a production S3 server on the same machine
 * (issue 19): a one-node Ceph radosgw (Debian's packages, pool size 1) and
 * `shoal dev` (R1, then R3), taken in turns with the same clients —
 * scripts/peer/s3bench.py (boto3: 64 MiB PUT/GET, 4 KiB c16, 1 GiB
 * multipart) and scripts/peer/small.mjs (4 KiB c16 from presigned URLs over
 * node:http, a client cheap enough not to be the limit) — with the server
 * CPU and peak RSS of every process. scripts/peer/run-peers.sh does the
 * work; this file decides whether it can run and prints its summary.
 *
 *   npm run bench -- peer      ROUNDS=n (default 2) · R3_RUNS=n (default 1; 0 skips R3)
 *                              WARMUP=n (default 1: untimed rounds of each system first)
 *                              PEER_OUT=DIR (default /tmp/peerbench) · BENCH_ARGS="--reps 3 --mpu-mib 256"
 *
 * Skipped, with one line saying why, where Ceph cannot be installed (not
 * Linux, not root, no apt, or Debian's ceph packages unreachable). Never part
 * of `npm test` (bench/ is not a test directory).
 */
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
const script = `${here}../scripts/peer/run-peers.sh`;

function skip(reason: string): never {
  console.log(`peer: skipped — ${reason}`);
  process.exit(0);
}

function cephInstalled(): boolean {
  return ["ceph-mon", "ceph-mgr", "ceph-osd", "radosgw", "ceph-base", "ceph-common"].every((p) => spawnSync("dpkg", ["-s", p], { stdio: "ignore" }).status === 0);
}

if (process.platform !== "linux") skip(`Ceph's packages need Linux (this is ${process.platform})`);
if (!cephInstalled()) {
  if (process.getuid?.() !== 0) skip("Ceph is not installed and installing it needs root");
  if (spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0) skip("Ceph is not installed and there is no apt-get");
  console.log("peer: installing Debian's ceph packages (ceph-mon ceph-mgr ceph-osd radosgw)…");
  spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit" });
  const r = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "ceph-mon", "ceph-mgr", "ceph-osd", "radosgw", "ceph-common", "ceph-base"], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  if (r.status !== 0 || !cephInstalled()) skip("Debian's ceph packages could not be installed (apt-get failed)");
}
if (process.getuid?.() !== 0) skip("radosgw.sh runs Ceph's daemons as root");
if (!existsSync("/usr/bin/python3") || spawnSync("/usr/bin/python3", ["-c", "import boto3"], { stdio: "ignore" }).status !== 0) skip("no /usr/bin/python3 with boto3 (apt-get install python3-boto3)");

const out = process.env["PEER_OUT"] ?? "/tmp/peerbench";
rmSync(`${out}/results.jsonl`, { force: true });
const r = spawnSync("bash", [script], {
  stdio: "inherit",
  env: { ...process.env, PEER_OUT: out, ROUNDS: process.env["ROUNDS"] ?? "2", R3_RUNS: process.env["R3_RUNS"] ?? "1" },
});
console.log(`\nresults: ${out}/results.jsonl (one JSON line per run: MB/s, ops/s, CPU seconds and peak RSS per phase and process)`);
process.exit(r.status ?? 1);
