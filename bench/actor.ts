/**
 * Shoal's own processes for the benches that measure through them, started
 * from a checkout `cwd` (another checkout's for A/B runs): a storage actor
 * (resolved once its service answers a ping), any `shoal start` (resolved
 * once its output names what it serves), and the measures taken of them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";

/** Starts the actor against `url`, adds it to `procs` (the bench stops them all), and waits up to 20 s for it to answer. */
export async function startStorageActor(url: string, o: { cwd: string; procs: ChildProcess[]; nodeArgs?: string[] }): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), "bin/shoal.js", "start", "--actors", "storage", "--nats", url, "--log-level", "warn"], { cwd: o.cwd, stdio: ["ignore", "ignore", "inherit"] });
  o.procs.push(child);
  const nc = await connect({ servers: url });
  try {
    for (let i = 0; i < 400; i++) {
      try {
        await nc.request("$SRV.PING.shoal-storage", "", { timeout: 200 });
        return child;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`the storage actor from ${o.cwd} did not answer within 20 s`);
  } finally {
    await nc.close();
  }
}

/**
 * `shoal start <args>` from checkout `cwd`, with S3 keys from `keys` and
 * every listening port free; resolves with the first group of `waitFor`
 * once its output shows it (up to 30 s), e.g. the gateway's `S3: <url>`.
 */
export async function shoalStart(o: {
  cwd: string;
  args: string[];
  procs: ChildProcess[];
  keys: { accessKey: string; secretKey: string };
  waitFor?: RegExp;
  /** A directory for `node --cpu-prof` of the process. */
  prof?: string;
  nodeArgs?: string[];
  env?: Record<string, string>;
  onOutput?: (c: Buffer) => void;
}): Promise<{ child: ChildProcess; match?: string }> {
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), ...(o.prof ? ["--cpu-prof", `--cpu-prof-dir=${o.prof}`] : []), "bin/shoal.js", "start", ...o.args, "--log-level", "warn"], {
    cwd: o.cwd,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, SHOAL_ACCESS_KEY: o.keys.accessKey, SHOAL_SECRET_KEY: o.keys.secretKey, SHOAL_S3_PORT: "0", SHOAL_CONSOLE_PORT: "0", SHOAL_METRICS_PORT: "0", ...o.env },
  });
  o.procs.push(child);
  let out = "";
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
    o.onOutput?.(c);
  });
  for (let i = 0; o.waitFor && i < 600; i++) {
    const m = o.waitFor.exec(out);
    if (m) return { child, match: m[1]! };
    await sleep(50);
  }
  if (o.waitFor) throw new Error(`no ${o.waitFor} from shoal start in ${o.cwd}: ${out}`);
  return { child };
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** The system (kernel) part of cpuSeconds: on this Firecracker VM, memory the kernel gave back to the host costs ~3 ms per MiB of system time when touched again (docs/benchmarks.md). */
export function sysSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[12]) / 100;
}

/** A GET over plain HTTP (a presigned URL), its body counted and dropped; rejects unless 200. */
export function httpGetBytes(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let n = 0;
      res.on("data", (c: Buffer) => (n += c.byteLength));
      res.on("end", () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`GET ${res.statusCode}`))));
      res.on("error", reject);
    })
      .on("error", reject)
      .end();
  });
}
