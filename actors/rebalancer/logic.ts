/**
 * Pure decisions of the rebalancer: what state each server is in (from what
 * answered, what the operator said and the grace period), who holds the
 * plan lease, how fast to go, and what the progress report says. No I/O;
 * unit-tested with an injected clock. Where the replicas should go is
 * src/placement's job.
 */
import { DEFAULT_POLICY, safeToStop, type Move, type PlacementPolicy, type PlacementServer, type PlacementStream } from "../../src/placement/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import type { ServerMark, ServerRow, TrackedMove as WireTrackedMove } from "../../src/subjects/rebalance.ts";

export interface RebalancePolicy extends PlacementPolicy {
  /** Balance and spread leaders on its own (else only on `shoal rebalance run`). Repair and drain always run. */
  auto: boolean;
  /** Replica moves running at once. */
  maxConcurrent: number;
  /** Pace of balance and drain moves: after a move of B bytes the next starts no sooner than B / this after it. Repairs are not paced. */
  maxBytesPerSec: number;
  /** How long a server may not answer before its replicas are replaced (default: health.repairGraceMs). */
  graceMs?: number;
  /** A move not finished within this (plus the time its bytes take at maxBytesPerSec) has failed. */
  moveTimeoutMs: number;
}

export const DEFAULT_REBALANCE_POLICY: Readonly<RebalancePolicy> = Object.freeze({
  ...DEFAULT_POLICY,
  auto: true,
  maxConcurrent: 1,
  maxBytesPerSec: 8 * 1024 * 1024,
  moveTimeoutMs: 30_000,
});

/** Validates an operator's policy override (KV shoal_plans `policy`); unknown or bad fields are a typed error. */
export function parsePolicy(raw: unknown, base: RebalancePolicy = DEFAULT_REBALANCE_POLICY): RebalancePolicy {
  if (raw === null || raw === undefined) return { ...base };
  if (typeof raw !== "object" || Array.isArray(raw)) throw new ShoalError("InvalidArgument", "the rebalance policy must be a JSON object");
  const out: RebalancePolicy = { ...base };
  const num = (k: string, v: unknown, min: number, max: number) => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) throw new ShoalError("InvalidArgument", `policy.${k} must be a number in [${min}, ${max}]`);
    return v;
  };
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    switch (k) {
      case "tolerance":
        out.tolerance = num(k, v, 0, 10);
        break;
      case "balance":
      case "leaders":
      case "auto":
        if (typeof v !== "boolean") throw new ShoalError("InvalidArgument", `policy.${k} must be true or false`);
        out[k] = v;
        break;
      case "maxMoves":
        out.maxMoves = Math.floor(num(k, v, 1, 1_000_000));
        break;
      case "maxConcurrent":
        out.maxConcurrent = Math.floor(num(k, v, 1, 64));
        break;
      case "maxBytesPerSec":
        out.maxBytesPerSec = num(k, v, 1024, 1e12);
        break;
      case "graceMs":
        out.graceMs = Math.floor(num(k, v, 0, 30 * 86_400_000));
        break;
      case "moveTimeoutMs":
        out.moveTimeoutMs = Math.floor(num(k, v, 1000, 86_400_000));
        break;
      default:
        throw new ShoalError("InvalidArgument", `unknown rebalance policy field ${JSON.stringify(k)}`);
    }
  }
  return out;
}

// --- servers -------------------------------------------------------------------------

/** What the rebalancer remembers about a server (KV shoal_plans `servers`). */
export interface ServerRecord {
  /** What the operator said: drained (undrain reverses it) or removed (for good; undrain reverses it too). */
  mark?: ServerMark;
  /** Last time (ms) it answered. */
  lastSeen: number;
  /** The health-monitor asked for its repair (down past its grace period); cleared when it answers. */
  repair?: boolean;
}

export interface ServerBook {
  v: 1;
  servers: Record<string, ServerRecord>;
}

export const emptyBook = (): ServerBook => ({ v: 1, servers: {} });

/** The book after a round: servers that answered are seen now (and a repair request on them is void). */
export function observe(book: ServerBook, answered: Iterable<string>, now: number): ServerBook {
  const servers: Record<string, ServerRecord> = {};
  for (const [n, r] of Object.entries(book.servers)) servers[n] = { ...r };
  for (const n of answered) {
    const r = servers[n];
    servers[n] = { ...(r?.mark ? { mark: r.mark } : {}), lastSeen: now };
  }
  return { v: 1, servers };
}

export type ServerCommand = "drain" | "undrain" | "remove" | "repair";

/** An operator's command on a server. A name never seen is NoSuchServer (a typo must not drain nothing silently). */
export function command(book: ServerBook, server: string, cmd: ServerCommand): ServerBook {
  const r = book.servers[server];
  if (!r) throw new ShoalError("NoSuchServer", `no server named ${JSON.stringify(server)} has been seen in this cluster (known: ${Object.keys(book.servers).sort().join(", ") || "none"})`);
  const next: ServerRecord = { lastSeen: r.lastSeen };
  if (cmd === "drain") next.mark = "drained";
  else if (cmd === "remove") next.mark = "removed";
  else if (cmd === "repair") {
    if (r.mark) next.mark = r.mark;
    next.repair = true;
  }
  return { v: 1, servers: { ...book.servers, [server]: next } };
}

/** Placement state of each server: removed → down; not answering → suspect within the grace, down after it (or at once on a repair request); drained → drained. */
export function serverStates(book: ServerBook, answered: ReadonlySet<string>, now: number, graceMs: number, capacity: ReadonlyMap<string, number> = new Map()): PlacementServer[] {
  return Object.entries(book.servers)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, r]) => {
      let state: PlacementServer["state"];
      if (r.mark === "removed") state = "down";
      else if (!answered.has(name)) state = r.repair || now - r.lastSeen >= graceMs ? "down" : "suspect";
      else state = r.mark === "drained" ? "drained" : "up";
      const cap = capacity.get(name);
      return { name, state, ...(cap ? { capacity: cap } : {}) };
    });
}

// --- lease -------------------------------------------------------------------------------

export interface Lease {
  v: 1;
  owner: string;
  /** ms since epoch it lapses unless renewed. */
  until: number;
}

/** Take a free or lapsed lease, renew our own, or wait for another's. */
export function leaseDecision(current: Lease | null, me: string, now: number): "take" | "renew" | "wait" {
  if (!current) return "take";
  if (current.owner === me) return "renew";
  return current.until < now ? "take" : "wait";
}

// --- balance moves that went astray ------------------------------------------------------------

/** How long a stream whose balance move landed elsewhere gets no balance move (ms). */
export const ASTRAY_HOLD_MS = 10 * 60_000;

/**
 * JetStream, not the rebalancer, picks where a replacement replica lands,
 * and it prefers a running server with few streams: a drained one. A
 * balance move that lands there is undone by the drain, whose replica can
 * land back where it came from, and the two repeat for ever (convergence
 * seed 877643435: KV_shoal_buckets bounced n3 → n4 → n3 for 2 minutes).
 * So a stream whose balance move landed on a server that takes no replicas
 * gets no further balance move for `holdMs`; repair, drain and leader moves
 * still go. A move that lands on another live server is only a different
 * prediction, and the next round corrects it: holding that stream would
 * leave the cluster unbalanced (seed 877643435 at soak sizes: OBJ_cvg,
 * planned for n5, landed on n4). `astray` maps a stream to when it happened.
 */
export function holdAstray(moves: readonly Move[], astray: ReadonlyMap<string, number>, now: number, holdMs = ASTRAY_HOLD_MS): Move[] {
  return moves.filter((m) => !(m.kind === "replica" && m.reason === "balance" && now - (astray.get(m.stream) ?? -Infinity) < holdMs));
}

/** Whether a finished move went astray: a balance move that landed on a server outside `targets` (the servers that take replicas). */
export function wentAstray(m: Move, landed: string | undefined, targets: ReadonlySet<string>): boolean {
  return m.kind === "replica" && m.reason === "balance" && landed !== undefined && landed !== "-" && landed !== m.to && !targets.has(landed);
}

// --- pacing and progress ---------------------------------------------------------------------

/** How long to wait after a move of `bytes` that took `tookMs`, to keep to maxBytesPerSec. */
export function paceMs(bytes: number, tookMs: number, maxBytesPerSec: number): number {
  return Math.max(0, Math.ceil((bytes / maxBytesPerSec) * 1000 - tookMs));
}

/** A move as the actor tracks it: the placement's Move (src/subjects/rebalance.ts has the wire format). */
export type TrackedMove = WireTrackedMove<Move>;
export type { MoveState, ServerRow, RebalanceStatus } from "../../src/subjects/rebalance.ts";

/** Seconds left for `bytesLeft`, from the rate seen so far (bytes done over time spent) or the configured pace. */
export function eta(bytesLeft: number, bytesDone: number, elapsedMs: number, maxBytesPerSec: number): number | null {
  if (bytesLeft <= 0) return 0;
  const seen = elapsedMs > 0 && bytesDone > 0 ? (bytesDone / elapsedMs) * 1000 : 0;
  const rate = seen > 0 ? Math.min(seen, maxBytesPerSec) : maxBytesPerSec;
  return Math.ceil(bytesLeft / rate);
}

/** The server table: state, bytes, replicas and leaders per server, and whether it is safe to stop. */
export function serverRows(servers: readonly PlacementServer[], book: ServerBook, streams: readonly PlacementStream[]): ServerRow[] {
  return servers.map((s) => {
    let bytes = 0;
    let replicas = 0;
    let leaders = 0;
    for (const st of streams) {
      if (st.peers.includes(s.name)) {
        bytes += st.bytes;
        replicas++;
      }
      if (st.leader === s.name) leaders++;
    }
    const mark = book.servers[s.name]?.mark;
    return { name: s.name, state: s.state, ...(mark ? { mark } : {}), bytes, replicas, leaders, safeToStop: safeToStop(s.name, streams) };
  });
}

/** Whether a stream is settled enough to plan on: a leader, all replicas current, as many as configured. */
export function settled(st: { replicas: number; leader: string | null; peers: string[]; current: boolean }): boolean {
  return st.leader !== null && st.current && st.peers.length === st.replicas;
}
