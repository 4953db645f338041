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

export const TEST_AUTH: AccountAuth = Object.freeze({ sysUser: "sys", sysPassword: "sys-test", appUser: "shoal", appPassword: "shoal-test" });

/** A temp dir removed in teardown (teardown runs even when the test throws). */
export function tempDir(t: ExecutionContext, prefix = "shoal-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
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

/** A client connection closed in teardown. */
export async function connectTo(t: ExecutionContext, servers: string | string[], opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const nc = await connect({ servers, ...opts });
  t.teardown(async () => {
    if (!nc.isClosed()) await nc.close();
  });
  return nc;
}

/** A connection to the system account ($SYS requests). */
export function connectSys(t: ExecutionContext, servers: string | string[]): Promise<NatsConnection> {
  return connectTo(t, servers, { user: TEST_AUTH.sysUser, pass: TEST_AUTH.sysPassword });
}
