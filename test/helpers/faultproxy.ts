/**
 * A TCP fault proxy on loopback, to sit in front of a client port or a
 * cluster-route port. It listens on a free port (0, read back) and forwards
 * to a target; at any time it can:
 *   cut()          close every connection and refuse new ones (reset at once)
 *   blackhole()    keep connections open but drop every byte both ways
 *   delay(ms)      add latency to every chunk, both ways, order preserved
 *   throttle(bps)  limit each direction of every connection to `bps` bytes
 *                  per second (a slow link: bytes queue, order preserved)
 *   heal()         back to plain forwarding
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import type { ExecutionContext } from "ava";

export type ProxyMode = { kind: "pass" } | { kind: "cut" } | { kind: "blackhole" } | { kind: "delay"; ms: number } | { kind: "throttle"; bytesPerSec: number };

interface Link {
  client: Socket;
  upstream: Socket;
}

export class FaultProxy {
  readonly targetHost: string;
  readonly targetPort: number;
  private server: Server;
  private links = new Set<Link>();
  private _mode: ProxyMode = { kind: "pass" };
  private _port = 0;
  /** Connections accepted since start (for assertions). */
  accepted = 0;

  constructor(targetPort: number, targetHost = "127.0.0.1") {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.server = createServer((client) => this.onConnection(client));
  }

  async listen(host = "127.0.0.1"): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, host, () => resolve());
    });
    const addr = this.server.address();
    this._port = typeof addr === "object" && addr ? addr.port : 0;
    return this;
  }

  get port(): number {
    return this._port;
  }

  get mode(): ProxyMode {
    return this._mode;
  }

  get openConnections(): number {
    return this.links.size;
  }

  /** URL in the given scheme pointing at the proxy. */
  url(scheme = "nats"): string {
    return `${scheme}://127.0.0.1:${this._port}`;
  }

  cut(): void {
    this._mode = { kind: "cut" };
    for (const l of [...this.links]) this.drop(l);
  }

  blackhole(): void {
    this._mode = { kind: "blackhole" };
  }

  delay(ms: number): void {
    if (!(ms >= 0)) throw new RangeError("delay must be >= 0");
    this._mode = { kind: "delay", ms };
  }

  throttle(bytesPerSec: number): void {
    if (!(bytesPerSec > 0)) throw new RangeError("throttle must be > 0 bytes per second");
    this._mode = { kind: "throttle", bytesPerSec };
  }

  heal(): void {
    this._mode = { kind: "pass" };
  }

  private onConnection(client: Socket): void {
    this.accepted++;
    if (this._mode.kind === "cut") {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: this.targetHost, port: this.targetPort });
    const link: Link = { client, upstream };
    this.links.add(link);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.pipe(client, upstream, link);
    this.pipe(upstream, client, link);
    const close = () => this.drop(link);
    client.once("close", close);
    upstream.once("close", close);
    client.on("error", close);
    upstream.on("error", close);
  }

  /**
   * Forwards `from` → `to` under the current mode. Each chunk is due at
   * arrival + delay, never before the previous chunk: order is preserved
   * across mode changes. Plain forwarding keeps backpressure.
   */
  private pipe(from: Socket, to: Socket, link: Link): void {
    let lastDue = 0;
    let pending = 0;
    const write = (chunk: Buffer) => {
      if (this.links.has(link) && this._mode.kind !== "blackhole" && !to.destroyed) to.write(chunk);
    };
    from.on("data", (chunk: Buffer) => {
      const mode = this._mode;
      if (!this.links.has(link)) return;
      if (mode.kind === "cut") return this.drop(link);
      if (mode.kind === "blackhole") return; // swallowed
      const now = Date.now();
      // a throttled chunk is due once the link has carried it after the ones before it
      const due = mode.kind === "throttle" ? Math.max(now, lastDue) + (chunk.byteLength * 1000) / mode.bytesPerSec : Math.max(now + (mode.kind === "delay" ? mode.ms : 0), lastDue);
      lastDue = due;
      if (due <= now && pending === 0) {
        if (!to.destroyed && !to.write(chunk)) {
          from.pause();
          to.once("drain", () => from.resume());
        }
        return;
      }
      pending++;
      setTimeout(() => {
        pending--;
        write(chunk);
      }, due - now);
    });
    from.on("end", () => {
      setTimeout(() => to.end(), Math.max(0, lastDue - Date.now()));
    });
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    link.client.resetAndDestroy();
    link.upstream.resetAndDestroy();
  }

  async close(): Promise<void> {
    for (const l of [...this.links]) this.drop(l);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A proxy in front of 127.0.0.1:targetPort, closed in teardown. */
export async function startProxy(t: ExecutionContext, targetPort: number): Promise<FaultProxy> {
  const p = new FaultProxy(targetPort);
  t.teardown(() => p.close());
  return p.listen();
}
