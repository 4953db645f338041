/**
 * Pure decisions of the health-monitor: which conditions a snapshot of the
 * cluster shows, the debounce that turns conditions into alerts, and the
 * health view. No I/O; unit-tested.
 */
import type { AlertSeverity } from "../../src/subjects/index.ts";

export interface ServerSeen {
  name: string;
  cluster?: string;
  version?: string;
  jetstream: boolean;
  /** Bytes of JetStream file storage used and its limit (0 = none). */
  storage?: number;
  maxStorage?: number;
}

export interface StreamSeen {
  name: string;
  replicas: number;
  leader: string | null;
  /** Peers other than the leader. */
  peers: Array<{ name: string; current: boolean; offline: boolean; lag: number }>;
  /** Stream info could not be read (e.g. no leader). */
  unreadable?: boolean;
  /**
   * Replicas the stream is meant to have, when Shoal knows (its shared
   * state: R3 on a cluster); a stream below it — created at R1 while peers
   * were missing at first boot — is under-replicated until raised.
   */
  intended?: number;
  /** Consumers the stream holds, and how many it may (STREAM_CONSUMER_LIMIT when it sets none). */
  consumers?: number;
  maxConsumers?: number;
}

/**
 * The consumers a stream may hold when it sets no limit of its own:
 * nats-server 2.15's `default_max_consumers` (a stream's -1 means this
 * default, not unlimited). Stock object-store readers leave one consumer per
 * get for 5 minutes, so a bucket read that way can reach it; then every new
 * consumer on it is refused — Shoal's list index and sweep included.
 */
export const STREAM_CONSUMER_LIMIT = 1000;
/** A stream holding this share of its consumer limit raises stream-consumers-near-limit. */
export const CONSUMERS_WARN_RATIO = 0.8;

export interface Snapshot {
  time: number;
  servers: ServerSeen[];
  /** Meta leader as the servers report it; null when clustered and none; undefined when not clustered. */
  metaLeader: string | null | undefined;
  streams: StreamSeen[];
  /** Live instances per actor kind. */
  actors: Record<string, number>;
  /**
   * Per bucket, composed multipart objects whose copy into the stock form
   * keeps failing, as live storage instances last reported them in their
   * heartbeats (the largest report).
   */
  restateStalled?: Record<string, number>;
}

export interface Known {
  servers: string[];
  actorKinds: string[];
}

export interface Condition {
  /** `<code>.<subject token>`: what an alert is keyed by. */
  id: string;
  code: "server-down" | "meta-leader-lost" | "stream-under-replicated" | "actor-kind-missing" | "storage-near-limit" | "restate-stalled" | "stream-consumers-near-limit";
  severity: AlertSeverity;
  subject: string;
  message: string;
}

/** Every alert code and its severity (docs/alerts.md). */
export const ALERT_SEVERITY: Readonly<Record<Condition["code"], AlertSeverity>> = {
  "server-down": "critical",
  "meta-leader-lost": "critical",
  "stream-under-replicated": "warning",
  "actor-kind-missing": "critical",
  "storage-near-limit": "warning",
  "restate-stalled": "warning",
  "stream-consumers-near-limit": "warning",
};

export const token = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_");

export function conditionsOf(s: Snapshot, known: Known, storageWarnRatio: number): Condition[] {
  const out: Condition[] = [];
  const up = new Set(s.servers.map((x) => x.name));
  const cond = (code: Condition["code"], subject: string, message: string) => out.push({ id: `${code}.${token(subject)}`, code, severity: ALERT_SEVERITY[code], subject, message });
  for (const name of known.servers) if (!up.has(name)) cond("server-down", name, `server ${name} does not answer`);
  if (s.metaLeader === null) cond("meta-leader-lost", "jetstream", "the JetStream meta group has no leader");
  // A replica on a server that does not answer is down now, whatever the
  // stream leader has noticed yet (it marks peers offline only after a while).
  const down = new Set(known.servers.filter((n) => !up.has(n)));
  for (const st of s.streams) {
    const limit = st.maxConsumers !== undefined && st.maxConsumers > 0 ? st.maxConsumers : STREAM_CONSUMER_LIMIT;
    if (st.consumers !== undefined && st.consumers >= CONSUMERS_WARN_RATIO * limit) {
      cond(
        "stream-consumers-near-limit",
        st.name,
        `stream ${st.name} holds ${st.consumers} of the ${limit} consumers it may; at the limit every new consumer on it is refused (Shoal's list index and sweep too). Stock object-store readers (nats object get, @nats-io/obj) leave one per get for 5 minutes; raise the stream's max_consumers or read through Shoal`,
      );
    }
    if (st.intended !== undefined && st.replicas < st.intended) {
      cond("stream-under-replicated", st.name, `stream ${st.name} is R${st.replicas}, meant to be R${st.intended} (created while peers were missing; raised once they are up)`);
      continue;
    }
    if (st.replicas <= 1) continue;
    const lost = (p: StreamSeen["peers"][number]) => p.offline || !p.current || down.has(p.name);
    const bad = st.unreadable || st.leader === null || (st.leader !== null && down.has(st.leader)) || st.peers.length < st.replicas - 1 || st.peers.some(lost);
    if (bad) {
      const lagging = st.peers.filter(lost).map((p) => p.name);
      cond("stream-under-replicated", st.name, `stream ${st.name} (R${st.replicas}) ${st.unreadable || st.leader === null ? "has no leader" : `has ${lagging.length ? `replicas behind or offline: ${lagging.join(", ")}` : "missing replicas"}`}`);
    }
  }
  for (const kind of known.actorKinds) if (!((s.actors[kind] ?? 0) > 0)) cond("actor-kind-missing", kind, `no live ${kind} actor`);
  for (const srv of s.servers) {
    if (srv.maxStorage && srv.storage !== undefined && srv.storage / srv.maxStorage > storageWarnRatio) {
      cond("storage-near-limit", srv.name, `server ${srv.name} uses ${Math.round((100 * srv.storage) / srv.maxStorage)}% of its JetStream storage`);
    }
  }
  for (const [bucket, n] of Object.entries(s.restateStalled ?? {})) {
    if (n > 0) cond("restate-stalled", bucket, `bucket ${bucket}: ${n} multipart object${n === 1 ? "" : "s"} still not copied into the stock form; Shoal reads ${n === 1 ? "it" : "them"}, stock tools (nats object get) do not see ${n === 1 ? "it" : "them"} yet; the storage actor's log says why the copy fails`);
  }
  return out;
}

/**
 * The stalled restatements a heartbeat's status reports
 * (`info.restateStalled`: bucket → count, set by the storage actor's sweep);
 * anything else there is ignored.
 */
export function stalledOf(info: unknown): Record<string, number> {
  const r = (info as { restateStalled?: unknown } | undefined)?.restateStalled;
  if (!r || typeof r !== "object" || Array.isArray(r)) return {};
  const out: Record<string, number> = {};
  for (const [bucket, n] of Object.entries(r)) if (typeof n === "number" && Number.isFinite(n) && n > 0) out[bucket] = n;
  return out;
}

/** What a snapshot adds to what has ever been seen (servers that answered, actor kinds that were live). */
export function learn(known: Known, s: Snapshot): Known {
  return mergeKnown(known, { servers: s.servers.map((x) => x.name), actorKinds: Object.entries(s.actors).filter(([, n]) => n > 0).map(([k]) => k) });
}

/** Everything either has seen. */
export function mergeKnown(a: Known, b: Known): Known {
  return { servers: [...new Set([...a.servers, ...b.servers])].sort(), actorKinds: [...new Set([...a.actorKinds, ...b.actorKinds])].sort() };
}

/**
 * Debounce: a condition counts once it has held for `debounceMs`, and stops
 * counting once it has been absent for `debounceMs`. Keeps per-id first-seen
 * and first-missing times.
 */
export class Debounce {
  private present = new Map<string, number>();
  private absent = new Map<string, number>();

  constructor(private readonly ms: number) {}

  /** Feeds the ids present now; returns the ids that have held long enough and those gone long enough. */
  update(now: number, ids: Iterable<string>, tracked: Iterable<string>): { held: Set<string>; gone: Set<string> } {
    const cur = new Set(ids);
    for (const id of cur) {
      if (!this.present.has(id)) this.present.set(id, now);
      this.absent.delete(id);
    }
    for (const id of new Set([...this.present.keys(), ...tracked])) {
      if (cur.has(id)) continue;
      this.present.delete(id);
      if (!this.absent.has(id)) this.absent.set(id, now);
    }
    const held = new Set([...this.present].filter(([, t]) => now - t >= this.ms).map(([id]) => id));
    const gone = new Set([...this.absent].filter(([, t]) => now - t >= this.ms).map(([id]) => id));
    return { held, gone };
  }

  forget(id: string): void {
    this.absent.delete(id);
  }
}

export interface AlertState {
  v: 1;
  id: string;
  code: Condition["code"];
  severity: AlertSeverity;
  subject: string;
  message: string;
  /** When it was raised (ISO); with the id, it names this occurrence. */
  since: string;
  state: "raised" | "resolving";
  /** The raise has been published. */
  published: boolean;
}

/** The alert event published on shoal.alerts.<severity>.<code>. */
export interface AlertEvent {
  v: 1;
  id: string;
  code: string;
  severity: AlertSeverity;
  subject: string;
  state: "raised" | "resolved";
  message: string;
  since: string;
  time: string;
}

export const raiseId = (a: AlertState) => `raise:${a.id}:${a.since}`;
export const resolveId = (a: AlertState) => `resolve:${a.id}:${a.since}`;

export interface HealthView {
  v: 1;
  time: string;
  healthy: boolean;
  servers: Array<{ name: string; up: boolean; version?: string; storage?: number; maxStorage?: number }>;
  metaLeader: string | null | undefined;
  /** Replicas by state: current (leader, or caught up), lagging (behind), offline (on a down server, or missing). */
  streams: Array<{ name: string; replicas: number; leader: string | null; healthy: boolean; current: number; lagging: number; offline: number; peers: StreamSeen["peers"] }>;
  underReplicated: string[];
  actors: Array<{ kind: string; live: number }>;
  conditions: Condition[];
  alerts: Array<Pick<AlertState, "id" | "code" | "severity" | "subject" | "message" | "since">>;
  by: string;
}

export function viewOf(s: Snapshot, known: Known, conds: Condition[], alerts: AlertState[], by: string): HealthView {
  const up = new Set(s.servers.map((x) => x.name));
  const under = new Set(conds.filter((c) => c.code === "stream-under-replicated").map((c) => c.subject));
  return {
    v: 1,
    time: new Date(s.time).toISOString(),
    healthy: conds.length === 0,
    servers: [...new Set([...known.servers, ...up])].sort().map((name) => {
      const x = s.servers.find((y) => y.name === name);
      return { name, up: up.has(name), ...(x?.version ? { version: x.version } : {}), ...(x?.storage !== undefined ? { storage: x.storage } : {}), ...(x?.maxStorage ? { maxStorage: x.maxStorage } : {}) };
    }),
    metaLeader: s.metaLeader,
    streams: s.streams.map((st) => {
      const down = (name: string) => !up.has(name);
      const current = (st.leader !== null && !st.unreadable && !down(st.leader) ? 1 : 0) + st.peers.filter((p) => p.current && !p.offline && !down(p.name)).length;
      const lagging = st.peers.filter((p) => !p.current && !p.offline && !down(p.name)).length;
      return { name: st.name, replicas: st.replicas, leader: st.leader, healthy: !under.has(st.name), current, lagging, offline: Math.max(0, st.replicas - current - lagging), peers: st.peers };
    }),
    underReplicated: [...under].sort(),
    actors: [...new Set([...known.actorKinds, ...Object.keys(s.actors)])].sort().map((kind) => ({ kind, live: s.actors[kind] ?? 0 })),
    conditions: conds,
    alerts: alerts.map(({ id, code, severity, subject, message, since }) => ({ id, code, severity, subject, message, since })),
    by,
  };
}
