/**
 * Test harness: real nats-server processes on free loopback ports, each in
 * its own temp dir, removed in teardown even when the test fails.
 *
 *   const srv = await startServer(t);          // one JetStream server
 *   const cl  = await startCluster(t, 3);      // 3-node JetStream cluster, meta leader elected
 *   const nc  = await connectTo(t, srv.url);   // closed in teardown
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import { connect, type NatsConnection, type ConnectionOptions } from "@nats-io/transport-node";
import { NatsServer, type NatsServerOptions } from "../../src/engine/server.ts";
import { NatsCluster, type ClusterOptions } from "../../src/engine/cluster.ts";
import type { AccountAuth } from "../../src/engine/config.ts";
import { startProxy, type FaultProxy } from "./faultproxy.ts";
import { withTimeout } from "../../src/runtime/backoff.ts";

export const TEST_AUTH: AccountAuth = Object.freeze({ sysUser: "sys", sysPassword: "sys-test", appUser: "shoal", appPassword: "shoal-test" });

/**
 * A temp dir removed in teardown (teardown runs even when the test throws).
 * Its name carries the test's title, so that `npm test`'s reaper names the
 * test whose servers outlived it.
 */
export function tempDir(t: ExecutionContext, prefix = "shoal-test-"): string {
  const title = t.title.replace(/[^A-Za-z0-9]+/g, "-").slice(0, 48);
  const dir = mkdtempSync(join(tmpdir(), `${prefix}${title}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startServer(t: ExecutionContext, opts: Partial<NatsServerOptions> = {}): Promise<NatsServer> {
  const dir = opts.dir ?? tempDir(t);
  const srv = new NatsServer({ name: "s1", auth: TEST_AUTH, ...opts, dir });
  // Registered before start: a server that half-started is still killed.
  t.teardown(() => srv.kill());
  await srv.start();
  return srv;
}

export async function startCluster(t: ExecutionContext, size = 3, opts: Partial<ClusterOptions> = {}): Promise<NatsCluster> {
  const dir = opts.dir ?? tempDir(t);
  let cluster: NatsCluster | undefined;
  t.teardown(() => cluster?.kill());
  cluster = await NatsCluster.start({ size, auth: TEST_AUTH, ...opts, dir });
  return cluster;
}

/**
 * A client connection closed in teardown. The close is given 10 s: nats.js
 * flushes before it closes, and a socket to a server that does not read
 * (frozen, or behind a cut proxy) never flushes.
 */
export async function connectTo(t: ExecutionContext, servers: string | string[], opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const nc = await connect({ servers, ...opts });
  t.teardown(async () => {
    if (!nc.isClosed()) await withTimeout(nc.close(), 10_000);
  });
  return nc;
}

/** A connection to the system account ($SYS requests). */
export function connectSys(t: ExecutionContext, servers: string | string[]): Promise<NatsConnection> {
  return connectTo(t, servers, { user: TEST_AUTH.sysUser, pass: TEST_AUTH.sysPassword });
}

/**
 * A cluster whose every directed route i→j, and every server's client port,
 * passes through its own fault proxy. `isolate(name)` cuts one server off from
 * its peers (and its clients, with `clients: true`); `healAll()` undoes it.
 */
export interface ProxiedCluster {
  cluster: NatsCluster;
  /** routes[i][j]: proxy on the route from server i to server j. */
  routes: Map<string, FaultProxy>;
  /** Proxy in front of each server's client port, by server name. */
  clients: Map<string, FaultProxy>;
  /** Client URLs through the proxies. */
  urls: string[];
  isolate(name: string, opts?: { clients?: boolean }): void;
  healAll(): void;
}

export async function startProxiedCluster(t: ExecutionContext, size = 3, opts: Partial<ClusterOptions> = {}): Promise<ProxiedCluster> {
  const routes = new Map<string, FaultProxy>();
  const names = Array.from({ length: size }, (_, i) => `${opts.namePrefix ?? "n"}${i + 1}`);
  const cluster = await startCluster(t, size, {
    ...opts,
    routeVia: async (from, to, direct) => {
      const p = await startProxy(t, Number(new URL(direct).port));
      routes.set(`${names[from]}>${names[to]}`, p);
      return `nats-route://127.0.0.1:${p.port}`;
    },
  });
  const clients = new Map<string, FaultProxy>();
  for (const s of cluster.servers) clients.set(s.name, await startProxy(t, s.ports.client));
  const all = () => [...routes.values(), ...clients.values()];
  return {
    cluster,
    routes,
    clients,
    urls: cluster.servers.map((s) => clients.get(s.name)!.url()),
    isolate(name, o = {}) {
      for (const [k, p] of routes) if (k.startsWith(`${name}>`) || k.endsWith(`>${name}`)) p.cut();
      if (o.clients) clients.get(name)?.cut();
    },
    healAll() {
      for (const p of all()) p.heal();
    },
  };
}
