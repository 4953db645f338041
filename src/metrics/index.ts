/**
 * Prometheus metrics of one Shoal process (prom-client), and the small HTTP
 * surface that serves them: /metrics, /healthz (alive) and /readyz
 * (connected to NATS, JetStream answering). The S3 gateway answers these
 * paths itself; a process that runs only actors opens this server with
 * `shoal start --metrics-port N`. Every name is documented in docs/metrics.md.
 *
 * One registry per process: in `shoal dev` the actors, the gateway and the
 * health-monitor all report into it, told apart by labels.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { listenHttp, type Listening } from "../runtime/http.ts";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { NatsConnection } from "@nats-io/transport-node";

export const registry = new Registry();
collectDefaultMetrics({ register: registry });

const requests = new Counter({
  name: "shoal_requests_total",
  help: "Requests handled, by service (actor kind or gateway), operation and outcome (ok or the error code).",
  labelNames: ["service", "op", "outcome"] as const,
  registers: [registry],
});
const duration = new Histogram({
  name: "shoal_request_duration_seconds",
  help: "Time from request to last byte (streamed bodies included), by service and operation.",
  labelNames: ["service", "op"] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});
const inflight = new Gauge({ name: "shoal_requests_in_flight", help: "Requests being handled now.", labelNames: ["service"] as const, registers: [registry] });
const bytesIn = new Counter({ name: "shoal_bytes_in_total", help: "Object bytes received (stored object data, or HTTP request bodies at the gateway).", labelNames: ["service"] as const, registers: [registry] });
const bytesOut = new Counter({ name: "shoal_bytes_out_total", help: "Object bytes sent (object data read, or HTTP response bodies at the gateway).", labelNames: ["service"] as const, registers: [registry] });
const actorInstances = new Gauge({ name: "shoal_actor_instances", help: "Actor instances running in this process, by kind.", labelNames: ["kind"] as const, registers: [registry] });

/**
 * Times one request; `done` records its outcome ("ok" or an error code),
 * under `op` or the operation named when done (known only after routing).
 */
export function startRequest(service: string, op: string): (outcome: string, finalOp?: string) => void {
  const end = duration.startTimer({ service });
  inflight.inc({ service });
  let finished = false;
  return (outcome, finalOp = op) => {
    if (finished) return;
    finished = true;
    end({ op: finalOp });
    inflight.dec({ service });
    requests.inc({ service, op: finalOp, outcome });
  };
}

export function countBytes(service: string, direction: "in" | "out", n: number): void {
  if (n > 0) (direction === "in" ? bytesIn : bytesOut).inc({ service }, n);
}

const restated = new Counter({
  name: "shoal_storage_restated_total",
  help: "Composed multipart objects' background copies into the stock form, by outcome (restated, not-current, not-composed, failed).",
  labelNames: ["outcome"] as const,
  registers: [registry],
});
const composedPending = new Gauge({
  name: "shoal_storage_composed_pending",
  help: "Composed multipart objects that are their key's current version and not yet in the stock form, per bucket, as the last sweep found them.",
  labelNames: ["bucket"] as const,
  registers: [registry],
});

/** One background copy of a composed object ended (src/store/compose.ts). */
export function countRestatement(outcome: string): void {
  restated.inc({ outcome });
}

/** What a sweep of `bucket` left composed and not yet restated. */
export function setComposedPending(bucket: string, n: number): void {
  composedPending.set({ bucket }, n);
}

export function actorStarted(kind: string): void {
  actorInstances.inc({ kind });
}

export function actorStopped(kind: string): void {
  actorInstances.dec({ kind });
}

// --- cluster health, as the health-monitor sees it -------------------------------

const clusterHealthy = new Gauge({ name: "shoal_cluster_healthy", help: "1 when the health-monitor sees no condition, else 0.", registers: [registry] });
const serverUp = new Gauge({ name: "shoal_server_up", help: "1 when the NATS server answers, 0 when a server seen before does not.", labelNames: ["server"] as const, registers: [registry] });
const serverStorage = new Gauge({ name: "shoal_server_storage_bytes", help: "JetStream file storage used on the server.", labelNames: ["server"] as const, registers: [registry] });
const serverStorageLimit = new Gauge({ name: "shoal_server_storage_limit_bytes", help: "JetStream file storage limit of the server (absent when unlimited).", labelNames: ["server"] as const, registers: [registry] });
const metaLeader = new Gauge({ name: "shoal_jetstream_meta_leader", help: "1 when the JetStream meta group has a leader (or the server is not clustered), else 0.", registers: [registry] });
const streamReplicas = new Gauge({
  name: "shoal_stream_replicas",
  help: "Replicas of a Shoal stream by state: current (leader or caught up), lagging, offline; `configured` is the replica count asked for.",
  labelNames: ["stream", "state"] as const,
  registers: [registry],
});
const streamHealthy = new Gauge({ name: "shoal_stream_healthy", help: "1 when the stream has all its replicas current, else 0.", labelNames: ["stream"] as const, registers: [registry] });
const clusterActors = new Gauge({ name: "shoal_cluster_actor_instances", help: "Live actor instances in the whole cluster (heartbeats), by kind.", labelNames: ["kind"] as const, registers: [registry] });
const alertsOpen = new Gauge({ name: "shoal_alerts_open", help: "Open alerts by code and severity (docs/alerts.md); every code is exported, 0 when none is open.", labelNames: ["code", "severity"] as const, registers: [registry] });

/** The part of the health view (actors/health-monitor/logic.ts) the gauges show. */
export interface HealthGaugeView {
  healthy: boolean;
  servers: ReadonlyArray<{ name: string; up: boolean; storage?: number; maxStorage?: number }>;
  metaLeader: string | null | undefined;
  streams: ReadonlyArray<{ name: string; replicas: number; healthy: boolean; current: number; lagging: number; offline: number }>;
  actors: ReadonlyArray<{ kind: string; live: number }>;
  alerts: ReadonlyArray<{ code: string; severity: string }>;
}

/** Alert codes and their severities, so that a code with no open alert shows 0. */
export type AlertCodes = ReadonlyArray<{ code: string; severity: string }>;

/** Replaces the health gauges with what `view` shows (series that vanished are dropped). */
export function exportHealth(view: HealthGaugeView, codes: AlertCodes): void {
  for (const g of [serverUp, serverStorage, serverStorageLimit, streamReplicas, streamHealthy, clusterActors, alertsOpen]) g.reset();
  clusterHealthy.set(view.healthy ? 1 : 0);
  metaLeader.set(view.metaLeader === null ? 0 : 1);
  for (const s of view.servers) {
    serverUp.set({ server: s.name }, s.up ? 1 : 0);
    if (s.storage !== undefined) serverStorage.set({ server: s.name }, s.storage);
    if (s.maxStorage) serverStorageLimit.set({ server: s.name }, s.maxStorage);
  }
  for (const st of view.streams) {
    streamReplicas.set({ stream: st.name, state: "configured" }, st.replicas);
    streamReplicas.set({ stream: st.name, state: "current" }, st.current);
    streamReplicas.set({ stream: st.name, state: "lagging" }, st.lagging);
    streamReplicas.set({ stream: st.name, state: "offline" }, st.offline);
    streamHealthy.set({ stream: st.name }, st.healthy ? 1 : 0);
  }
  for (const a of view.actors) clusterActors.set({ kind: a.kind }, a.live);
  for (const c of codes) alertsOpen.set({ code: c.code, severity: c.severity }, 0);
  for (const a of view.alerts) alertsOpen.inc({ code: a.code, severity: a.severity });
}

// --- HTTP ----------------------------------------------------------------------------

export interface Readiness {
  ready: boolean;
  reason?: string;
}

/**
 * Ready when every connection is open and JetStream answers an account-info
 * request within `timeoutMs` (a connection that is reconnecting buffers the
 * request, so a server outage shows as not ready within the timeout).
 */
export async function natsReady(conns: readonly NatsConnection[], timeoutMs = 2000): Promise<Readiness> {
  if (conns.length === 0) return { ready: false, reason: "no NATS connection" };
  for (const nc of conns) {
    if (nc.isClosed()) return { ready: false, reason: "NATS connection closed" };
    try {
      const r = (await nc.request("$JS.API.INFO", "", { timeout: timeoutMs })).json<{ error?: { description?: string } }>();
      if (r.error) return { ready: false, reason: `JetStream: ${r.error.description ?? "error"}` };
    } catch (e) {
      return { ready: false, reason: `JetStream did not answer: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { ready: true };
}

export const OPS_PATHS = new Set(["/metrics", "/healthz", "/readyz"]);

/** Answers GET/HEAD of /metrics, /healthz or /readyz. */
export async function serveOps(path: string, req: IncomingMessage, res: ServerResponse, ready: () => Promise<Readiness>): Promise<void> {
  const send = (status: number, type: string, body: string) => {
    res.statusCode = status;
    res.setHeader("Content-Type", type);
    res.setHeader("Content-Length", Buffer.byteLength(body));
    res.setHeader("Cache-Control", "no-store");
    res.end(req.method === "HEAD" ? undefined : body);
  };
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("Allow", "GET, HEAD");
    send(405, "text/plain; charset=utf-8", "method not allowed\n");
    return;
  }
  if (path === "/metrics") send(200, registry.contentType, await registry.metrics());
  else if (path === "/healthz") send(200, "application/json", JSON.stringify({ status: "alive" }) + "\n");
  else {
    const r = await ready();
    send(r.ready ? 200 : 503, "application/json", JSON.stringify(r.ready ? { status: "ready" } : { status: "not ready", reason: r.reason }) + "\n");
  }
}

export type OpsServer = Listening;

/** The metrics/health endpoint of a process that runs only actors. */
export async function startOpsServer(o: { host: string; port: number; ready: () => Promise<Readiness> }): Promise<OpsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (!OPS_PATHS.has(path)) {
      res.statusCode = 404;
      res.setHeader("Content-Type", "text/plain; charset=utf-8");
      res.end("not found: try /metrics, /healthz or /readyz\n");
      return;
    }
    serveOps(path, req, res, o.ready).catch(() => {
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
  });
  return listenHttp(server, o.host, o.port);
}

// --- rebalancer ---------------------------------------------------------------------

const rebalanceActive = new Gauge({ name: "shoal_rebalance_active", help: "1 while the rebalancer has moves planned or running, else 0.", registers: [registry] });
const rebalanceMoves = new Gauge({ name: "shoal_rebalance_moves", help: "Moves of the current (or last) rebalance by state: planned, running, done, failed.", labelNames: ["state"] as const, registers: [registry] });
const rebalanceBytesLeft = new Gauge({ name: "shoal_rebalance_bytes_left", help: "Bytes the planned and running replica moves still have to copy.", registers: [registry] });
const rebalanceEta = new Gauge({ name: "shoal_rebalance_eta_seconds", help: "Estimated seconds until the planned moves are done (-1 when unknown).", registers: [registry] });
const serverReplicas = new Gauge({ name: "shoal_server_replicas", help: "Replicas of Shoal streams on the server, as the rebalancer sees them.", labelNames: ["server"] as const, registers: [registry] });
const serverLeaders = new Gauge({ name: "shoal_server_leaders", help: "Shoal streams the server leads.", labelNames: ["server"] as const, registers: [registry] });
const serverShoalBytes = new Gauge({ name: "shoal_server_shoal_bytes", help: "Bytes of Shoal stream replicas on the server.", labelNames: ["server"] as const, registers: [registry] });

/** The part of the rebalance status (actors/rebalancer/logic.ts) the gauges show. */
export interface RebalanceGaugeView {
  state: string;
  planned: number;
  running: number;
  done: number;
  failed: number;
  bytesLeft: number;
  etaSeconds: number | null;
  servers: ReadonlyArray<{ name: string; bytes: number; replicas: number; leaders: number }>;
}

export function exportRebalance(s: RebalanceGaugeView): void {
  rebalanceActive.set(s.state === "idle" ? 0 : 1);
  for (const state of ["planned", "running", "done", "failed"] as const) rebalanceMoves.set({ state }, s[state]);
  rebalanceBytesLeft.set(s.bytesLeft);
  rebalanceEta.set(s.etaSeconds ?? -1);
  for (const g of [serverReplicas, serverLeaders, serverShoalBytes]) g.reset();
  for (const v of s.servers) {
    serverReplicas.set({ server: v.name }, v.replicas);
    serverLeaders.set({ server: v.name }, v.leaders);
    serverShoalBytes.set({ server: v.name }, v.bytes);
  }
}
