/**
 * Actor presence: the heartbeat payload, its decoder, and the pure rule that
 * decides whether an instance is alive. nats-server 2.9 ignores per-message
 * TTLs, so the KV bucket's max_age removes stale entries and readers also
 * judge by the timestamp inside.
 */
import type { KV } from "@nats-io/kv";
import type { JetStreamManager } from "@nats-io/jetstream";
import { KV as KV_NAMES, kvKeyPrefix, kvStream } from "../subjects/index.ts";
import { ShoalError } from "../errors/index.ts";

export interface Heartbeat {
  v: 1;
  kind: string;
  id: string;
  host: string;
  pid: number;
  /** ms since epoch the instance started. */
  started: number;
  /** ms since epoch of this heartbeat. */
  now: number;
  /** Heartbeat interval the instance promises (readers derive staleness from it). */
  intervalMs: number;
  status: "running" | "draining";
  /** In-flight requests. */
  inflight: number;
  /** Free-form status the actor reports (busy/idle, counters). */
  info?: Record<string, unknown>;
}

export function decodeHeartbeat(data: Uint8Array | string): Heartbeat {
  let v: unknown;
  try {
    v = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch {
    throw new ShoalError("MalformedPayload", "heartbeat is not JSON");
  }
  const h = v as Partial<Heartbeat>;
  if (!h || typeof h !== "object") throw new ShoalError("MalformedPayload", "heartbeat is not an object");
  if (h.v !== 1) throw new ShoalError("UnsupportedVersion", `heartbeat version ${JSON.stringify(h.v)}`);
  for (const k of ["kind", "id", "host"] as const) if (typeof h[k] !== "string") throw new ShoalError("MalformedPayload", `heartbeat.${k} must be a string`);
  for (const k of ["pid", "started", "now", "intervalMs", "inflight"] as const) {
    if (typeof h[k] !== "number" || !Number.isFinite(h[k])) throw new ShoalError("MalformedPayload", `heartbeat.${k} must be a number`);
  }
  if (h.status !== "running" && h.status !== "draining") throw new ShoalError("MalformedPayload", "heartbeat.status must be running or draining");
  return h as Heartbeat;
}

/** Alive when the last heartbeat is younger than `ttlMs` (default: 3 of its own intervals). */
export function isAlive(hb: Heartbeat, now: number, ttlMs = hb.intervalMs * 3): boolean {
  return now - hb.now <= ttlMs;
}

export interface Presence {
  /** Live instances by kind. */
  byKind: Map<string, Heartbeat[]>;
  live: Heartbeat[];
  /** Entries still in KV but judged stale. */
  stale: Heartbeat[];
}

/** Splits heartbeats into live and stale, grouped by kind. Pure. */
export function summarizePresence(beats: Iterable<Heartbeat>, now: number, ttlMs?: number): Presence {
  const byKind = new Map<string, Heartbeat[]>();
  const live: Heartbeat[] = [];
  const stale: Heartbeat[] = [];
  for (const hb of beats) {
    if (isAlive(hb, now, ttlMs)) {
      live.push(hb);
      const list = byKind.get(hb.kind) ?? [];
      list.push(hb);
      byKind.set(hb.kind, list);
    } else {
      stale.push(hb);
    }
  }
  return { byKind, live, stale };
}

/** Reads KV shoal_actors and returns who is alive now. Malformed entries are skipped. */
export async function listPresence(jsm: JetStreamManager, kv: KV, now = Date.now(), ttlMs?: number): Promise<Presence> {
  // The keys come from the stream's subjects, not kv.keys(): its consumer
  // only ends when it sees nothing pending or an idle heartbeat, and a key
  // rewritten faster than the 5 s heartbeat (every live actor's) can keep
  // it from ever ending — measured: a test hung in it about one run in three.
  const prefix = kvKeyPrefix(KV_NAMES.actors);
  const info = await jsm.streams.info(kvStream(KV_NAMES.actors), { subjects_filter: `${prefix}>` });
  const beats: Heartbeat[] = [];
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const e = await kv.get(subject.slice(prefix.length));
    if (!e || e.operation !== "PUT" || e.value.length === 0) continue;
    try {
      beats.push(decodeHeartbeat(e.value));
    } catch {
      // a foreign or corrupt entry does not make anyone alive
    }
  }
  return summarizePresence(beats, now, ttlMs);
}
