/**
 * A JetStream cluster of nats-server processes on loopback, used by
 * `shoal dev --servers 3` and by the test harness.
 *
 * Ports are never fixed: client and monitoring ports are -1 (read back from
 * each server's ports file); route ports are reserved from the OS just before
 * start, because JetStream clustering refuses to start without configured
 * routes. Every server routes to all its peers, so any one can restart alone.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ShoalError } from "../errors/index.ts";
import type { AccountAuth } from "./config.ts";
import { NatsServer, type NatsServerOptions } from "./server.ts";
import type { NatsServerBinary } from "./binary.ts";
import { rmSync } from "node:fs";
import { freePort, holdDeadPort, type HeldPort } from "./ports.ts";

export interface ClusterOptions {
  size: number;
  dir: string;
  auth: AccountAuth;
  clusterName?: string;
  namePrefix?: string;
  binary?: NatsServerBinary;
  /** Per-server options on top of the defaults (limits, extra lines). */
  server?: Partial<Pick<NatsServerOptions, "maxMemoryStore" | "maxFileStore" | "maxPayload" | "extra" | "startTimeoutMs">>;
  /**
   * Maps the route URL a server should use to reach a peer (e.g. through a
   * fault proxy). Receives (from, to, directUrl).
   */
  routeVia?: (from: number, to: number, direct: string) => string | Promise<string>;
  readyTimeoutMs?: number;
}

interface Jsz {
  server_name?: string;
  meta_cluster?: { leader?: string; cluster_size?: number; replicas?: { name: string; current: boolean; offline?: boolean }[] };
}

export class NatsCluster {
  readonly servers: NatsServer[];
  readonly name: string;
  private readonly opts: ClusterOptions;
  private readonly held: HeldPort[];

  private constructor(opts: ClusterOptions, servers: NatsServer[], held: HeldPort[] = []) {
    this.opts = opts;
    this.servers = servers;
    this.held = held;
    this.name = opts.clusterName ?? "shoal";
  }

  /**
   * Starts the cluster. A reserved route port can be taken by another
   * process before the server binds it (any server started with port -1 may
   * be given it): then the cluster is started again, on fresh ports and
   * empty directories, up to three times.
   */
  static async start(opts: ClusterOptions): Promise<NatsCluster> {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new ShoalError("InvalidConfig", `cluster size must be >= 1, got ${opts.size}`);
    for (let attempt = 1; ; attempt++) {
      try {
        return await NatsCluster.startOnce(opts);
      } catch (e) {
        if (attempt >= 3 || !/address already in use/i.test(String((e as Error)?.message))) throw e;
        const prefix = opts.namePrefix ?? "n";
        for (let i = 0; i < opts.size; i++) rmSync(join(opts.dir, `${prefix}${i + 1}`), { recursive: true, force: true });
      }
    }
  }

  private static async startOnce(opts: ClusterOptions): Promise<NatsCluster> {
    const clusterName = opts.clusterName ?? "shoal";
    const prefix = opts.namePrefix ?? "n";
    // JetStream clustering will not start without configured routes, so route
    // ports are reserved up front; client and monitoring ports stay -1.
    const routePorts: number[] = [];
    while (routePorts.length < opts.size) {
      const p = await freePort();
      if (!routePorts.includes(p)) routePorts.push(p);
    }
    // Behind proxies, a server must not be reachable around them: peers learn
    // each other's route URL by gossip and would open "implicit" routes to it
    // directly. Advertise a reserved, closed port instead, so only the
    // configured (proxied) routes ever connect. The advertised ports are held
    // by this process for the cluster's life (connections to them are closed
    // at once): a port only reserved and closed could be handed to another
    // process's server, and peers would then flood it with route attempts.
    const held: HeldPort[] = [];
    const advertise: (string | undefined)[] = [];
    for (let i = 0; i < opts.size; i++) {
      if (!opts.routeVia) {
        advertise.push(undefined);
        continue;
      }
      const h = await holdDeadPort();
      held.push(h);
      advertise.push(`127.0.0.1:${h.port}`);
    }
    const servers: NatsServer[] = [];
    for (let i = 0; i < opts.size; i++) {
      servers.push(
        new NatsServer({
          name: `${prefix}${i + 1}`,
          dir: join(opts.dir, `${prefix}${i + 1}`),
          auth: opts.auth,
          binary: opts.binary,
          cluster: { name: clusterName, port: routePorts[i]!, routes: [], noAdvertise: opts.routeVia !== undefined, ...(advertise[i] ? { advertise: advertise[i] } : {}) },
          ...opts.server,
        }),
      );
    }
    const cluster = new NatsCluster(opts, servers, held);
    try {
      await cluster.rewireRoutes();
      await Promise.all(servers.map((s) => s.start()));
      await cluster.waitReady(opts.readyTimeoutMs ?? 30_000);
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** Points each server's routes at every peer (through routeVia when set). Takes effect on (re)start. */
  async rewireRoutes(): Promise<void> {
    for (const [i, s] of this.servers.entries()) {
      const routes: string[] = [];
      for (const [j, peer] of this.servers.entries()) {
        if (i === j) continue;
        const direct = peer.clusterUrl;
        routes.push(this.opts.routeVia ? await this.opts.routeVia(i, j, direct) : direct);
      }
      s.setRoutes(routes);
    }
  }

  /** Client URLs of the running servers, for a connection's server list. */
  get urls(): string[] {
    return this.servers.filter((s) => s.running).map((s) => s.url);
  }

  /** Name of the JetStream meta leader as a running server sees it, or undefined. */
  async metaLeader(): Promise<string | undefined> {
    for (const s of this.servers) {
      if (!s.running) continue;
      try {
        const j = await s.monitor<Jsz>("/jsz");
        if (j.meta_cluster?.leader) return j.meta_cluster.leader;
      } catch {
        // try the next one
      }
    }
    return undefined;
  }

  /**
   * Waits until every running server reports JetStream healthy (/healthz: meta
   * group joined and current) and agrees on one meta leader.
   */
  async waitReady(timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      const running = this.servers.filter((s) => s.running);
      try {
        const leaders = new Set<string>();
        let healthy = 0;
        const unhealthy: string[] = [];
        for (const s of running) {
          const r = await fetch(`${s.monitorUrl}/healthz?details=true`, { signal: AbortSignal.timeout(1000) });
          if (r.ok) healthy++;
          // what the server says is not current (a stream or consumer catching up): the timeout's message names it
          else unhealthy.push(`${s.name}: ${(await r.text().catch(() => "")).replace(/\s+/g, " ").slice(0, 300)}`);
          const j = await s.monitor<Jsz>("/jsz");
          leaders.add(j.meta_cluster?.leader ?? "");
        }
        const [leader] = [...leaders];
        // A killed leader is still named by its peers until they elect anew.
        const leaderRunning = running.some((s) => s.name === leader);
        if (healthy === running.length && leaders.size === 1 && leader && leaderRunning) return leader;
        last = `healthy ${healthy}/${running.length}, leaders ${JSON.stringify([...leaders])}${unhealthy.length ? `; ${unhealthy.join("; ")}` : ""}`;
      } catch (e) {
        last = String(e);
      }
      await sleep(100);
    }
    throw new ShoalError("Timeout", `cluster not ready after ${timeoutMs} ms (${last})`);
  }

  server(name: string): NatsServer {
    const s = this.servers.find((x) => x.name === name);
    if (!s) throw new Error(`no server named ${name}`);
    return s;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop(5000)));
    await this.releasePorts();
  }

  async kill(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.kill()));
    await this.releasePorts();
  }

  private async releasePorts(): Promise<void> {
    await Promise.all(this.held.splice(0).map((h) => h.release()));
  }
}
