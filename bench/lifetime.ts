/**
 * What a bench needs to end cleanly: a bound on any step (a hang shows as
 * a failure naming the step, not a stuck bench), and, when the bench is
 * killed (its timeout, ^C), the processes, servers and dirs it started
 * stopped and removed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";

/** `fn`, or an error naming `what` after `ms`. */
export async function within<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([fn(), new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no end after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** On SIGTERM or SIGINT: SIGKILL what the bench started (the lists as they are then), remove its dirs, exit 130. */
export function cleanUpOnSignal(started: { procs: ChildProcess[]; servers: Array<{ pid: number | undefined }>; dirs: string[] }): void {
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.once(sig, () => {
      for (const p of started.procs) p.kill("SIGKILL");
      for (const s of started.servers) if (s.pid) process.kill(s.pid, "SIGKILL");
      for (const d of started.dirs) rmSync(d, { recursive: true, force: true });
      process.exit(130);
    });
  }
}

type Started = { procs: ChildProcess[]; servers: Array<{ pid: number | undefined; stop(): Promise<void> }>; dirs: string[] };

/** The end of a bench that went well: its processes asked to stop (SIGINT, `graceMs` to drain), then its servers stopped. */
export async function stopStarted(started: Started, graceMs: number): Promise<void> {
  for (const p of started.procs) p.kill("SIGINT");
  await new Promise((resolve) => setTimeout(resolve, graceMs));
  await Promise.all(started.servers.map((s) => s.stop()));
}

/** Whatever the end: anything still running killed, servers stopped, dirs removed. */
export async function removeStarted(started: Started): Promise<void> {
  for (const p of started.procs) if (p.exitCode === null) p.kill("SIGKILL");
  for (const s of started.servers) await s.stop().catch(() => undefined);
  for (const d of started.dirs) rmSync(d, { recursive: true, force: true });
}

/** The NATS accounts and S3 keys of the servers and gateways a bench starts. */
export const BENCH_AUTH = Object.freeze({ sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" });
export const BENCH_KEYS = Object.freeze({ accessKey: "BENCHKEY", secretKey: "bench-secret-key-0123456789" });

/** A maker of fresh temp dirs under `base` (the system's by default), each recorded in `dirs` for removal at the end. */
export function dirMaker(dirs: string[], base = tmpdir()): () => string {
  return () => {
    const d = mkdtempSync(join(base, "shoal-bench-"));
    dirs.push(d);
    return d;
  };
}
