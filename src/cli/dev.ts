/**
 * `shoal dev`: the embedded default. One local nats-server with JetStream (or
 * a local N-node cluster with --servers N), every actor in this process with
 * its own connection, and — once it exists — the S3 gateway. Ctrl-C stops
 * everything cleanly.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { ensureNatsServer } from "../engine/binary.ts";
import { NatsServer } from "../engine/server.ts";
import { describeCgroup } from "../engine/cgroup.ts";
import { NatsCluster } from "../engine/cluster.ts";
import type { AccountAuth } from "../engine/config.ts";
import type { DevConfig } from "../config.ts";

export interface DevCredentials extends AccountAuth {
  v: 1;
  /** The S3 gateway's key pair (unless SHOAL_ACCESS_KEY / SHOAL_SECRET_KEY are set). */
  s3AccessKey: string;
  s3SecretKey: string;
}

/** Credentials generated once per data dir and kept there (mode 0600). */
export function loadOrCreateCredentials(dataDir: string): DevCredentials {
  const file = join(dataDir, "credentials.json");
  const secret = () => randomBytes(18).toString("base64url");
  let old: Partial<DevCredentials> = {};
  if (existsSync(file)) {
    old = JSON.parse(readFileSync(file, "utf8")) as Partial<DevCredentials>;
    if (old.v === 1 && old.sysUser && old.sysPassword && old.appUser && old.appPassword && old.s3AccessKey && old.s3SecretKey) return old as DevCredentials;
  }
  // Keep what an older file has; generate what it lacks.
  const creds: DevCredentials = {
    v: 1,
    sysUser: old.sysUser ?? "sys",
    sysPassword: old.sysPassword ?? secret(),
    appUser: old.appUser ?? "shoal",
    appPassword: old.appPassword ?? secret(),
    s3AccessKey: old.s3AccessKey ?? `SHOAL${randomBytes(8).toString("hex").toUpperCase()}`,
    s3SecretKey: old.s3SecretKey ?? randomBytes(30).toString("base64url"),
  };
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return creds;
}

/** True when nothing listens on host:port. */
export function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolveFree) => {
    const srv = createServer();
    srv.once("error", () => resolveFree(false));
    srv.listen(port, host, () => srv.close(() => resolveFree(true)));
  });
}

export interface DevEngine {
  urls: string[];
  monitorUrls: string[];
  credentials: DevCredentials;
  dataDir: string;
  stop(): Promise<void>;
}

/** Starts the dev nats-server(s). `log` receives progress lines. */
export async function startDevEngine(dev: DevConfig, log: (line: string) => void): Promise<DevEngine> {
  const binary = ensureNatsServer({ install: true, log });
  const dataDir = resolve(dev.dataDir);
  const credentials = loadOrCreateCredentials(dataDir);
  const wanted = dev.natsPort === 0 ? -1 : (await portIsFree(dev.natsPort)) ? dev.natsPort : -1;
  if (dev.natsPort !== 0 && wanted === -1) log(`shoal: port ${dev.natsPort} is taken; using a free port instead`);
  const auth: AccountAuth = credentials;
  if (dev.servers === 1) {
    const srv = new NatsServer({ name: "shoal-dev", dir: join(dataDir, "nats"), port: wanted, auth, binary });
    await srv.start();
    log(`shoal: ${describeCgroup(srv.name, srv.cgroup)}`);
    return { urls: [srv.url], monitorUrls: [srv.monitorUrl], credentials, dataDir, stop: () => srv.stop() };
  }
  const cluster = await NatsCluster.start({ size: dev.servers, dir: join(dataDir, `cluster-${dev.servers}`), auth, binary, namePrefix: "shoal-dev-" });
  for (const s of cluster.servers) log(`shoal: ${describeCgroup(s.name, s.cgroup)}`);
  return {
    urls: cluster.servers.map((s) => s.url),
    monitorUrls: cluster.servers.map((s) => s.monitorUrl),
    credentials,
    dataDir,
    stop: () => cluster.stop(),
  };
}
