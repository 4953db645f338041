/**
 * Placement: where the replicas of Shoal's streams should live. Pure
 * functions, no I/O: (servers, streams, policy) → moves. The rebalancer
 * (actors/rebalancer) feeds it what the cluster looks like and carries out
 * the moves through JetStream; tests check its laws with fast-check.
 *
 * The rules, in order:
 *   1. repair and drain — a replica on a server that is `down` (past its
 *      grace period, or removed by the operator) or `drained` moves to a
 *      live server that does not hold the stream yet;
 *   2. capacity balance — while every known server is settled (none
 *      `suspect`), replicas move from the most loaded server to the least
 *      loaded one until each server's load is within ±tolerance of the mean,
 *      or no move would bring the two closer (discrete stream sizes);
 *   3. leader balance — a server that leads more than ⌈streams/servers⌉
 *      replicated streams hands leaderships to the least-leading member.
 * Load is bytes divided by the server's weight (its storage limit when every
 * live server reports one, else 1). Ties are broken by rendezvous
 * (highest-random-weight) hashing of (stream, server), so the same cluster
 * always gives the same plan and a changed server only moves what it must.
 */
import { createHash } from "node:crypto";
import type { MoveReason, ServerState } from "../subjects/rebalance.ts";

/** A server's state and a move's reason: the rebalancer's wire types (src/subjects/rebalance.ts). */
export type { MoveReason, ServerState };

export interface PlacementServer {
  name: string;
  state: ServerState;
  /** Storage limit in bytes (0 or absent: unknown). */
  capacity?: number;
}

export interface PlacementStream {
  name: string;
  /** Configured replica count. */
  replicas: number;
  /** Bytes held by one replica. */
  bytes: number;
  /** Servers holding a replica (leader included). */
  peers: string[];
  leader: string | null;
}

export interface PlacementPolicy {
  /** Allowed deviation of a server's load from the mean, as a fraction (0.1 = ±10%). */
  tolerance: number;
  /** Balance bytes across servers (rule 2). Repair and drain always happen. */
  balance: boolean;
  /** Balance leaderships (rule 3). */
  leaders: boolean;
  /** Upper bound on the moves of one plan (a safety net; the plan is cut there). */
  maxMoves: number;
}

export const DEFAULT_POLICY: Readonly<PlacementPolicy> = Object.freeze({ tolerance: 0.1, balance: true, leaders: true, maxMoves: 10_000 });


/** A replica of `stream` leaves `from` and a new one is made on `to`. */
export interface ReplicaMove {
  kind: "replica";
  stream: string;
  from: string;
  to: string;
  bytes: number;
  reason: Exclude<MoveReason, "leader">;
}

/** The leadership of `stream` passes from `from` to `to` (a member). */
export interface LeaderMove {
  kind: "leader";
  stream: string;
  from: string;
  to: string;
  bytes: 0;
  reason: "leader";
}

export type Move = ReplicaMove | LeaderMove;

/** The `to` of a replica move that removes a surplus member without placing a replacement. */
export const NO_REPLACEMENT = "-";

/** Rendezvous weight of (stream, server): a stable pseudo-random 48-bit number. */
export function rendezvous(stream: string, server: string): number {
  return createHash("sha256").update(stream).update("\0").update(server).digest().readUIntBE(0, 6);
}

/** Servers ordered by rendezvous weight for a stream, highest first. */
export function rendezvousOrder(stream: string, servers: readonly string[]): string[] {
  return [...servers].sort((a, b) => rendezvous(stream, b) - rendezvous(stream, a) || (a < b ? -1 : 1));
}

const isTarget = (s: PlacementServer) => s.state === "up";

/** The weight each live server's load is divided by. */
function weights(servers: readonly PlacementServer[]): Map<string, number> {
  const live = servers.filter(isTarget);
  const all = live.length > 0 && live.every((s) => (s.capacity ?? 0) > 0);
  const mean = all ? live.reduce((a, s) => a + s.capacity!, 0) / live.length : 1;
  return new Map(live.map((s) => [s.name, all ? s.capacity! / mean : 1]));
}

/** Bytes and replica counts per server, from the streams. */
export function loads(streams: readonly PlacementStream[]): { bytes: Map<string, number>; replicas: Map<string, number>; leaders: Map<string, number> } {
  const bytes = new Map<string, number>();
  const replicas = new Map<string, number>();
  const leaders = new Map<string, number>();
  for (const st of streams) {
    for (const p of st.peers) {
      bytes.set(p, (bytes.get(p) ?? 0) + st.bytes);
      replicas.set(p, (replicas.get(p) ?? 0) + 1);
    }
    if (st.leader && st.replicas > 1) leaders.set(st.leader, (leaders.get(st.leader) ?? 0) + 1);
  }
  return { bytes, replicas, leaders };
}

/** The state after the moves, as JetStream would leave it. Pure. */
export function applyMoves(streams: readonly PlacementStream[], moves: readonly Move[]): PlacementStream[] {
  const out = new Map(streams.map((s) => [s.name, { ...s, peers: [...s.peers] }]));
  for (const m of moves) {
    const st = out.get(m.stream);
    if (!st) continue;
    if (m.kind === "leader") {
      if (st.peers.includes(m.to)) st.leader = m.to;
      continue;
    }
    st.peers = st.peers.filter((p) => p !== m.from);
    if (m.to === NO_REPLACEMENT) {
      if (st.leader === m.from) st.leader = rendezvousOrder(st.name, st.peers)[0] ?? null;
      continue;
    }
    if (!st.peers.includes(m.to)) st.peers.push(m.to);
    if (st.leader === m.from) st.leader = rendezvousOrder(st.name, st.peers.filter((p) => p !== m.to))[0] ?? m.to;
  }
  return [...out.values()];
}

/** Each live server's load (bytes / weight) and their mean. */
export function serverLoads(servers: readonly PlacementServer[], streams: readonly PlacementStream[]): { mean: number; load: Map<string, number> } {
  const w = weights(servers);
  const { bytes } = loads(streams);
  const load = new Map<string, number>();
  for (const [name, weight] of w) load.set(name, (bytes.get(name) ?? 0) / weight);
  const total = [...load.values()].reduce((a, b) => a + b, 0);
  return { mean: load.size ? total / load.size : 0, load };
}

/** Most leaderships a server should hold: ⌈replicated streams / live servers⌉. */
export function leaderBound(servers: readonly PlacementServer[], streams: readonly PlacementStream[]): number {
  const live = servers.filter(isTarget).length;
  const replicated = streams.filter((s) => s.replicas > 1).length;
  return live === 0 ? 0 : Math.ceil(replicated / live);
}

/**
 * The moves that take the cluster from `streams` to a placement that obeys
 * the rules above. Deterministic: the same input gives the same plan.
 */
export function plan(servers: readonly PlacementServer[], streamsIn: readonly PlacementStream[], policy: PlacementPolicy = DEFAULT_POLICY): Move[] {
  const byName = new Map(servers.map((s) => [s.name, s]));
  const live = servers.filter(isTarget).map((s) => s.name);
  const liveSet = new Set(live);
  const w = weights(servers);
  const streams = [...streamsIn].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((s) => ({ ...s, peers: [...s.peers] }));
  const moves: Move[] = [];
  const bytes = new Map<string, number>(live.map((n) => [n, 0]));
  const count = new Map<string, number>(live.map((n) => [n, 0]));
  for (const st of streams) {
    for (const p of st.peers) {
      if (!liveSet.has(p)) continue;
      bytes.set(p, bytes.get(p)! + st.bytes);
      count.set(p, count.get(p)! + 1);
    }
  }
  const load = (n: string) => bytes.get(n)! / w.get(n)!;
  const move = (st: PlacementStream, from: string, to: string, reason: ReplicaMove["reason"]) => {
    moves.push({ kind: "replica", stream: st.name, from, to, bytes: st.bytes, reason });
    const next = applyMoves([st], [moves[moves.length - 1]!])[0]!;
    st.peers = next.peers;
    st.leader = next.leader;
    if (liveSet.has(from)) {
      bytes.set(from, bytes.get(from)! - st.bytes);
      count.set(from, count.get(from)! - 1);
    }
    bytes.set(to, bytes.get(to)! + st.bytes);
    count.set(to, count.get(to)! + 1);
  };
  /** The live non-member that should take a replica of `st`: least loaded, then fewest replicas, then rendezvous. */
  const bestTarget = (st: PlacementStream): string | undefined => {
    const cands = live.filter((n) => !st.peers.includes(n));
    cands.sort((a, b) => load(a) - load(b) || count.get(a)! - count.get(b)! || rendezvous(st.name, b) - rendezvous(st.name, a));
    return cands[0];
  };

  // 1. repair and drain; a stream's replicas on dead servers first (measured: evacuating a
  // drained peer from a group that still lists a dead one stalls until the dead one is replaced)
  const rank = (p: string) => ((byName.get(p)?.state ?? "down") === "down" ? 0 : 1);
  for (const st of streams) {
    for (const p of [...st.peers].sort((a, b) => rank(a) - rank(b))) {
      const s = byName.get(p);
      const state = s?.state ?? "down"; // a peer no server list knows has been removed from the cluster
      if (state !== "down" && state !== "drained") continue;
      if (moves.length >= policy.maxMoves) return moves;
      if (st.peers.length > st.replicas) {
        // More members than replicas (an evacuation cut short by a member
        // going offline leaves the new peer added and the old one in place):
        // the surplus member on a dead or drained server is removed, with no
        // replacement (a peer remove, as a repair: the group keeps its
        // configured count). Replacing it instead would keep the surplus.
        moves.push({ kind: "replica", stream: st.name, from: p, to: NO_REPLACEMENT, bytes: st.bytes, reason: "repair" });
        const next = applyMoves([st], [moves[moves.length - 1]!])[0]!;
        st.peers = next.peers;
        st.leader = next.leader; // (p is not live: no load to take off it)
        continue;
      }
      const to = bestTarget(st);
      if (to) move(st, p, to, state === "down" ? "repair" : "drain");
    }
  }

  // 2. capacity balance, only while no server is in doubt
  const settled = !servers.some((s) => s.state === "suspect");
  if (policy.balance && settled && live.length > 1) {
    const total = live.reduce((a, n) => a + load(n), 0);
    const mean = total / live.length;
    const hi = mean * (1 + policy.tolerance);
    const lo = mean * (1 - policy.tolerance);
    for (let guard = 0; guard < 100_000 && moves.length < policy.maxMoves; guard++) {
      const order = [...live].sort((a, b) => load(b) - load(a) || count.get(b)! - count.get(a)! || (a < b ? -1 : 1));
      if (load(order[0]!) <= hi && load(order[order.length - 1]!) >= lo) break;
      // The move that best evens a pair of servers, one above the mean and
      // one below: a stream on `f` and not on `t` that lowers the spread
      // (Σ bytes²/weight strictly falls, so the loop ends). First choice: the
      // largest stream that pushes neither `t` over the band nor `f` under it (fills a deficit
      // without creating a surplus: fewest bytes moved); failing that, the
      // largest that leaves `t` no fuller than `f` (discrete sizes). Rendezvous
      // breaks ties.
      let found = false;
      for (const fill of [true, false]) {
        for (const [f, t] of pairs(order)) {
          if (load(f) <= mean || load(t) >= mean) continue;
          const wf = w.get(f)!;
          const wt = w.get(t)!;
          const ok = (b: number) => (fill ? load(t) + b / wt <= hi && load(f) - b / wf >= lo : load(t) + b / wt <= load(f) - b / wf) && b * (1 / wf + 1 / wt) < 2 * (load(f) - load(t));
          const cands = streams.filter((st) => st.bytes > 0 && ok(st.bytes) && st.peers.includes(f) && !st.peers.includes(t));
          cands.sort((a, b) => b.bytes - a.bytes || rendezvous(b.name, t) - rendezvous(a.name, t));
          if (cands[0]) {
            move(cands[0], f, t, "balance");
            found = true;
            break;
          }
        }
        if (found) break;
      }
      if (!found) break;
    }
  }

  // 3. leader balance
  if (policy.leaders) {
    const bound = leaderBound(servers, streams);
    const led = new Map<string, number>(live.map((n) => [n, 0]));
    for (const st of streams) if (st.replicas > 1 && st.leader && led.has(st.leader)) led.set(st.leader, led.get(st.leader)! + 1);
    const members = (st: PlacementStream) => st.peers.filter((p) => liveSet.has(p));
    // leaders on servers that are not live go first, then the over-full
    for (const st of streams) {
      if (st.replicas <= 1 || !st.leader || liveSet.has(st.leader)) continue;
      if (byName.get(st.leader)?.state !== "drained") continue; // a down leader is replaced by JetStream's election
      const to = members(st).sort((a, b) => led.get(a)! - led.get(b)! || rendezvous(st.name, b) - rendezvous(st.name, a))[0];
      if (!to || moves.length >= policy.maxMoves) continue;
      moves.push({ kind: "leader", stream: st.name, from: st.leader, to, bytes: 0, reason: "leader" });
      st.leader = to;
      led.set(to, led.get(to)! + 1);
    }
    // A leadership goes from a server over the bound to a member under it,
    // or to any member that leads at least two fewer (the spread still
    // narrows: Σ leaderships² strictly falls, so the loop ends). The
    // over-full servers are tried most-leading first; the first with such a
    // move makes it. (Stopping at the first over-full server without a
    // member under the bound once left a server with three leaderships of
    // five replicated streams on five servers: unit › placement, seed
    // 1051183060.)
    for (let guard = 0; guard < 100_000 && moves.length < policy.maxMoves; guard++) {
      const overs = [...led].filter(([, n]) => n > bound).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      let best: { st: PlacementStream; from: string; to: string } | undefined;
      for (const [from, n] of overs) {
        for (const st of streams) {
          if (st.replicas <= 1 || st.leader !== from) continue;
          for (const to of members(st)) {
            const m = led.get(to)!;
            if (to === from || (m >= bound && m + 1 >= n)) continue;
            if (!best || m < led.get(best.to)! || (m === led.get(best.to) && rendezvous(st.name, to) > rendezvous(best.st.name, best.to))) best = { st, from, to };
          }
        }
        if (best) break;
      }
      if (!best) break;
      const { from } = best;
      moves.push({ kind: "leader", stream: best.st.name, from, to: best.to, bytes: 0, reason: "leader" });
      best.st.leader = best.to;
      led.set(from, led.get(from)! - 1);
      led.set(best.to, led.get(best.to)! + 1);
    }
  }
  return moves;
}

/** Ordered (from, to) pairs: most loaded first, each against the least loaded first. */
function* pairs(order: string[]): Generator<[string, string]> {
  for (let i = 0; i < order.length; i++) for (let j = order.length - 1; j > i; j--) yield [order[i]!, order[j]!];
}

/** Whether a server holds nothing (no replica, no leadership) of the given streams: safe to stop. */
export function safeToStop(server: string, streams: readonly PlacementStream[]): boolean {
  return !streams.some((s) => s.peers.includes(server) || s.leader === server);
}
