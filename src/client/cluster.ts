/**
 * Cluster views for the SDK: the health-monitor's view (`shoal.v1.health`,
 * what `shoal status` prints) and the rebalancer's progress
 * (`shoal.ctl.rebalancer.status`), which may not exist: a cluster without a
 * rebalancer answers `null`, not an error.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { ShoalError, errorFromWire, toShoalError } from "../errors/index.ts";
import { controlSubject, healthSubject } from "../subjects/index.ts";

/** The health view (docs/alerts.md, "Health view"). */
export interface ClusterHealth {
  v: 1;
  time: string;
  healthy: boolean;
  servers: Array<{ name: string; up: boolean; version?: string; storage?: number; maxStorage?: number }>;
  metaLeader?: string | null;
  streams: Array<{ name: string; replicas: number; leader: string | null; healthy: boolean; current?: number; lagging?: number; offline?: number; peers: Array<{ name: string; current: boolean; offline: boolean; lag: number }> }>;
  underReplicated: string[];
  actors: Array<{ kind: string; live: number }>;
  alerts: Array<{ id: string; code: string; severity: string; subject: string; message: string; since: string }>;
  by?: string;
}

/** The health view; ServiceUnavailable when no health-monitor answers. */
export async function clusterHealth(nc: NatsConnection, timeoutMs = 3000): Promise<ClusterHealth> {
  let m;
  try {
    m = await nc.request(healthSubject(), "", { timeout: timeoutMs });
  } catch (e) {
    const err = toShoalError(e);
    if (err.code === "ServiceUnavailable" || err.code === "Timeout") throw new ShoalError("ServiceUnavailable", `no health-monitor answered ${healthSubject()} (is one running?)`, { cause: e });
    throw err;
  }
  const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.data.length < 65536 ? m.string() : undefined);
  if (err) throw err;
  return m.json<ClusterHealth>();
}

/**
 * The rebalancer's status reply as it sends it (a JSON object), or null when
 * no rebalancer answers (none running, or a Shoal without one).
 */
export async function rebalancerStatus(nc: NatsConnection, timeoutMs = 1500): Promise<Record<string, unknown> | null> {
  let m;
  try {
    m = await nc.request(controlSubject("rebalancer", "status"), JSON.stringify({ v: 1 }), { timeout: timeoutMs });
  } catch (e) {
    const err = toShoalError(e);
    if (err.code === "ServiceUnavailable" || err.code === "Timeout") return null;
    throw err;
  }
  const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.data.length < 65536 ? m.string() : undefined);
  if (err) throw err;
  const v = m.json<unknown>();
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}
