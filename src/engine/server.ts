/**
 * One nats-server process: start it on free loopback ports (port -1, real
 * ports read back from its ports file), wait until JetStream answers, kill it
 * (SIGKILL or graceful), restart it with its data on the same ports, or
 * restart it with its disk wiped (a replacement node).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ShoalError } from "../errors/index.ts";
import { ensureNatsServer, type NatsServerBinary } from "./binary.ts";
import { renderServerConfig, type AccountAuth, type ServerConfig } from "./config.ts";
import { oomKills, parseByteSize, placeInMemoryCgroup, releaseCgroup, SERVER_CGROUP_MEMORY, type CgroupPlacement } from "./cgroup.ts";

export interface ServerPorts {
  client: number;
  http: number;
  cluster?: number;
}

export interface NatsServerOptions {
  /** server_name; also the peer name JetStream uses for placement. */
  name: string;
  /** Working directory: config, ports file, log and JetStream store live here. */
  dir: string;
  host?: string;
  /** Client port: -1 (default) for a free one. */
  port?: number;
  /** Monitoring port: -1 (default) for a free one. */
  httpPort?: number;
  auth: AccountAuth;
  cluster?: { name: string; port?: number; routes: string[]; noAdvertise?: boolean; advertise?: string };
  maxMemoryStore?: string;
  maxFileStore?: string;
  maxPayload?: string;
  extra?: string[];
  binary?: NatsServerBinary;
  /** How long start() waits for the server to come up. */
  startTimeoutMs?: number;
  /**
   * The Go runtime's soft memory limit for the server (GOMEMLIMIT): default
   * `SERVER_MEMORY_LIMIT`, or the GOMEMLIMIT of Shoal's own environment;
   * "off" leaves the Go default (no limit).
   */
  memoryLimit?: string;
  /**
   * The memory cgroup the server runs in, its heap and page cache together
   * (cgroup.ts): default `SERVER_CGROUP_MEMORY`, or Shoal's own
   * SHOAL_SERVER_CGROUP_MEMORY; "off" starts it in Shoal's own cgroup.
   */
  cgroupMemory?: string;
}

/**
 * GOMEMLIMIT for the servers Shoal starts. A 1 GiB multipart upload
 * through the gateway (16 MiB parts) took nats-server 2.15.1's RSS to
 * 532–697 MiB with Go's default pacing (GOGC=100: the heap may double
 * before a collection) and 382–388 MiB with this limit, at the same CPU
 * (4.43–4.76 s against 4.54–4.57 s per GiB) and upload time
 * (docs/benchmarks.md, "nats-server's memory during multipart"). It is a
 * soft limit: a live heap above it still grows, with more frequent
 * collections (Go caps their CPU at about half).
 */
export const SERVER_MEMORY_LIMIT = "384MiB";

/** How a server's process ended. */
export interface ServerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** OOM kills its memory cgroup counted (cgroup.ts oomKills), when it had one that counts them. */
  oomKills?: number;
}

export class NatsServer {
  readonly name: string;
  readonly dir: string;
  readonly host: string;
  private opts: NatsServerOptions;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private _ports: ServerPorts | undefined;
  private binary: NatsServerBinary | undefined;
  /** Where the running server's memory cgroup is, or why it has none (cgroup.ts). */
  cgroup: CgroupPlacement | undefined;
  /**
   * Called when the process exits without stop(), kill() or restart()
   * asking it to (a crash, a kill from outside, the kernel's OOM killer):
   * `shoal dev` reports it from here, and restarts a server its memory
   * cgroup killed (src/cli/dev.ts superviseServer).
   */
  onUnexpectedExit: ((e: ServerExit) => void) | undefined;
  private stopping = false;

  constructor(opts: NatsServerOptions) {
    this.opts = { ...opts, cluster: opts.cluster ? { ...opts.cluster, routes: [...opts.cluster.routes] } : undefined };
    this.name = opts.name;
    this.dir = opts.dir;
    this.host = opts.host ?? "127.0.0.1";
    this.binary = opts.binary;
  }

  get ports(): ServerPorts {
    if (!this._ports) throw new Error(`nats-server ${this.name} has not started`);
    return this._ports;
  }

  /** nats://user:pass@host:port is not used: the app user is the no-auth user. */
  get url(): string {
    return `nats://${this.host}:${this.ports.client}`;
  }

  get monitorUrl(): string {
    return `http://${this.host}:${this.ports.http}`;
  }

  /** Route URL; known before start when the route port was reserved. */
  get clusterUrl(): string {
    const port = this._ports?.cluster ?? this.opts.cluster?.port;
    if (port === undefined || port < 0) throw new Error(`nats-server ${this.name} has no known route port`);
    return `nats-route://${this.host}:${port}`;
  }

  /** Where JetStream keeps its data (the server appends `jetstream` to store_dir). */
  get storeDir(): string {
    return join(this.dir, "jetstream");
  }

  get logFile(): string {
    return join(this.dir, "server.log");
  }

  get pid(): number | undefined {
    return this.proc?.exitCode === null && this.proc.signalCode === null ? this.proc.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  /** Replaces the route list (used when peers' ports become known). */
  setRoutes(routes: string[]): void {
    if (!this.opts.cluster) throw new Error("not a clustered server");
    this.opts.cluster.routes = [...routes];
  }

  private config(): ServerConfig {
    const o = this.opts;
    const p = this._ports;
    return {
      serverName: o.name,
      host: this.host,
      // After the first start the ports are pinned so that clients and routes find the server again.
      port: p?.client ?? o.port ?? -1,
      httpPort: p?.http ?? o.httpPort ?? -1,
      portsFileDir: this.dir,
      storeDir: this.dir,
      maxMemoryStore: o.maxMemoryStore,
      maxFileStore: o.maxFileStore,
      maxPayload: o.maxPayload,
      cluster: o.cluster
        ? { name: o.cluster.name, port: p?.cluster ?? o.cluster.port ?? -1, routes: o.cluster.routes, noAdvertise: o.cluster.noAdvertise, advertise: o.cluster.advertise }
        : undefined,
      auth: o.auth,
      extra: o.extra,
    };
  }

  /** Starts the process and resolves once its ports are known and it answers /healthz. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`nats-server ${this.name} is already running`);
    this.binary ??= ensureNatsServer({ install: false });
    mkdirSync(this.dir, { recursive: true });
    for (const f of readdirSync(this.dir)) if (f.endsWith(".ports")) unlinkSync(join(this.dir, f));
    const confPath = join(this.dir, "nats-server.conf");
    writeFileSync(confPath, renderServerConfig(this.config()));
    const cgroupLimit = this.cgroupLimit();
    const logFd = openSync(this.logFile, "a");
    let proc: ChildProcess;
    try {
      // Own process group: a signal meant for the parent's group (Ctrl-C in a
      // test runner) does not reach servers; teardown kills them by PID.
      const limit = this.opts.memoryLimit ?? process.env["GOMEMLIMIT"] ?? SERVER_MEMORY_LIMIT;
      const env = { ...process.env };
      if (limit === "off") delete env["GOMEMLIMIT"];
      else env["GOMEMLIMIT"] = limit;
      proc = spawn(this.binary.path, ["-c", confPath], { detached: true, stdio: ["ignore", logFd, logFd], env });
    } finally {
      closeSync(logFd);
    }
    this.proc = proc;
    this.stopping = false;
    const cgroup = (this.cgroup = proc.pid === undefined ? undefined : cgroupLimit === "off" ? { reason: "turned off" } : placeInMemoryCgroup(proc.pid, cgroupLimit));
    this.exited = new Promise((resolve) =>
      proc.once("exit", (code, signal) => {
        const oom = cgroup && "dir" in cgroup ? oomKills(cgroup.dir) : undefined;
        if (cgroup && "dir" in cgroup) releaseCgroup(cgroup.dir);
        resolve();
        if (!this.stopping && this.proc === proc) this.onUnexpectedExit?.({ code, signal, ...(oom !== undefined ? { oomKills: oom } : {}) });
      }),
    );
    proc.once("error", () => undefined);
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 20_000);
    try {
      this._ports = await this.readPorts(proc, deadline);
      await this.waitHealthy(deadline);
    } catch (e) {
      await this.kill();
      throw e;
    }
  }

  /** The server's memory cgroup limit in bytes, or "off"; InvalidConfig for a value that is not a size. */
  private cgroupLimit(): number | "off" {
    const want = this.opts.cgroupMemory ?? process.env["SHOAL_SERVER_CGROUP_MEMORY"] ?? SERVER_CGROUP_MEMORY;
    if (want === "off") return "off";
    const bytes = parseByteSize(want);
    if (bytes === undefined) throw new ShoalError("InvalidConfig", `the server's memory cgroup limit ${JSON.stringify(want)} is not a size: say 1GiB, 512MiB, a number of bytes, or off`);
    return bytes;
  }

  private async readPorts(proc: ChildProcess, deadline: number): Promise<ServerPorts> {
    const file = join(this.dir, `${basenameOf(this.binary!.path)}_${proc.pid}.ports`);
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new ShoalError("ServiceUnavailable", `nats-server ${this.name} exited during start (code ${proc.exitCode ?? proc.signalCode}); log: ${this.logFile}\n${this.tailLog()}`);
      }
      try {
        const j = JSON.parse(readFileSync(file, "utf8")) as { nats?: string[]; monitoring?: string[]; cluster?: string[] };
        const client = portOf(j.nats?.[0]);
        const http = portOf(j.monitoring?.[0]);
        const cluster = portOf(j.cluster?.[0]);
        if (client && http && (!this.opts.cluster || cluster)) return { client, http, ...(cluster ? { cluster } : {}) };
      } catch {
        // not written yet
      }
      await sleep(20);
    }
    throw new ShoalError("Timeout", `nats-server ${this.name} did not write its ports file in time; log: ${this.logFile}`);
  }

  private async waitHealthy(deadline: number): Promise<void> {
    // For a clustered server /healthz waits on the meta group; readiness of the
    // whole cluster is the cluster's job. Here: the server answers and JetStream is enabled.
    const url = `${this.monitorUrl}/healthz?js-enabled-only=true`;
    while (Date.now() < deadline) {
      if (!this.running) throw new ShoalError("ServiceUnavailable", `nats-server ${this.name} exited during start; log: ${this.logFile}\n${this.tailLog()}`);
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(25);
    }
    throw new ShoalError("Timeout", `nats-server ${this.name} did not become healthy in time; log: ${this.logFile}`);
  }

  /** JSON of a monitoring endpoint such as `/jsz` or `/varz`. */
  async monitor<T = unknown>(path: string): Promise<T> {
    const r = await fetch(`${this.monitorUrl}${path}`, { signal: AbortSignal.timeout(2000) });
    if (!r.ok) throw new Error(`${path} answered ${r.status}`);
    return (await r.json()) as T;
  }

  /** Sends a signal (SIGKILL by default) and waits until the process is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    this.stopping = true;
    const pid = this.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    await this.exited;
  }

  /** Graceful stop (SIGTERM: the server flushes and leaves), SIGKILL after a deadline. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    const pid = this.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
    const t = sleep(timeoutMs).then(() => "timeout" as const);
    if ((await Promise.race([this.exited.then(() => "exited" as const), t])) === "timeout") await this.kill("SIGKILL");
  }

  /** Restarts on the same ports with the same data. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Restarts on the same ports with an empty disk: a replacement node. */
  async restartWiped(): Promise<void> {
    await this.kill();
    rmSync(this.storeDir, { recursive: true, force: true });
    await this.start();
  }

  tailLog(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

function portOf(url: string | undefined): number | undefined {
  if (!url) return undefined;
  const m = /:(\d+)\/?$/.exec(url);
  return m ? Number(m[1]) : undefined;
}

function basenameOf(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}
