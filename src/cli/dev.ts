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
import { NatsServer, type ServerExit } from "../engine/server.ts";
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
  servers: NatsServer[];
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
    const supervisor = superviseServer(srv, log);
    return {
      servers: [srv],
      urls: [srv.url],
      monitorUrls: [srv.monitorUrl],
      credentials,
      dataDir,
      stop: async () => {
        await supervisor.close();
        await srv.stop();
      },
    };
  }
  const cluster = await NatsCluster.start({ size: dev.servers, dir: join(dataDir, `cluster-${dev.servers}`), auth, binary, namePrefix: "shoal-dev-" });
  const supervisors = cluster.servers.map((s) => {
    log(`shoal: ${describeCgroup(s.name, s.cgroup)}`);
    return superviseServer(s, log);
  });
  return {
    servers: cluster.servers,
    urls: cluster.servers.map((s) => s.url),
    monitorUrls: cluster.servers.map((s) => s.monitorUrl),
    credentials,
    dataDir,
    stop: async () => {
      await Promise.all(supervisors.map((s) => s.close()));
      await cluster.stop();
    },
  };
}

/** Restarts in a minute at most, before `shoal dev` gives up on a server that keeps exiting. */
export const DEV_RESTARTS_PER_MINUTE = 5;

/** Why a server's process ended, in words. */
export function exitReason(srv: NatsServer, e: ServerExit): string {
  const how = e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
  const cg = srv.cgroup && "dir" in srv.cgroup ? srv.cgroup : undefined;
  if (cg && e.oomKills) return `${how}: out of memory in its cgroup of ${cg.limitBytes / 1024 ** 2} MiB (SHOAL_SERVER_CGROUP_MEMORY raises it)`;
  return how;
}

/**
 * A dev server that exits without being asked to is said so, with its
 * cause. One the OOM killer ended in the memory cgroup Shoal put it in
 * (src/engine/cgroup.ts: a limit Shoal chose) is started again on the same
 * ports with the same data, and the actors reconnect by themselves — at
 * most DEV_RESTARTS_PER_MINUTE times a minute. Any other end (a crash, a
 * kill from outside: `shoal dev --servers 3` is where one tries a failover
 * by killing a server) is left as it is.
 */
export function superviseServer(srv: NatsServer, log: (line: string) => void): { close(): Promise<void> } {
  const restarts: number[] = [];
  let closed = false;
  let pending: Promise<void> | undefined;
  srv.onUnexpectedExit = (e) => {
    if (closed) return;
    const why = exitReason(srv, e);
    if (!e.oomKills) {
      log(`shoal: nats-server ${srv.name} exited unexpectedly (${why}); not started again (only a server its memory cgroup killed is); log: ${srv.logFile}`);
      return;
    }
    const now = Date.now();
    while (restarts.length > 0 && now - restarts[0]! > 60_000) restarts.shift();
    if (restarts.length >= DEV_RESTARTS_PER_MINUTE) {
      log(`shoal: nats-server ${srv.name} exited (${why}), the ${DEV_RESTARTS_PER_MINUTE + 1}th time within a minute: not restarting it; log: ${srv.logFile}`);
      return;
    }
    restarts.push(now);
    log(`shoal: nats-server ${srv.name} exited unexpectedly (${why}); starting it again on the same ports and data`);
    pending = srv.start().then(
      () => log(`shoal: nats-server ${srv.name} is back (${srv.url})`),
      (err: unknown) => log(`shoal: nats-server ${srv.name} could not be started again: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  // shoal dev stopping: no restart from now on, and one under way finishes first (then stop() stops it)
  return {
    async close() {
      closed = true;
      srv.onUnexpectedExit = undefined;
      await pending;
    },
  };
}
