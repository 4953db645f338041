/**
 * rebalancer — keeps Shoal's streams whole and spread.
 *
 * Serves (NATS micro service `shoal-rebalancer`, queue group) on
 * `shoal.ctl.rebalancer.<command>`:
 *   status                 progress of the current rebalance (KV shoal_plans `status`)
 *   plan                   a dry run: the moves it would make now
 *   run                    balance now (also when policy.auto is off)
 *   servers                each server's state, bytes, replicas, leaders, safe-to-stop
 *   drain|undrain|remove   {"server":"<name>"}: the operator's word on a server
 *   repair                 {"v":1,"server":"<name>"}: published by the health-monitor
 *                          when a server stays down past the grace period
 * Reads: `$SYS.REQ.SERVER.PING.JSZ` (which servers answer, their storage
 * limits; needs the system-account user), `$JS.API.STREAM.LIST` (replicas,
 * leaders and bytes of every Shoal stream: OBJ_*, KV_shoal_*, SHOAL_*).
 * Does, through JetStream (which copies and catches up — Shoal never does):
 *   stream update num_replicas (down to its peers, back up)  a stream left short of peers
 *   `$JS.API.STREAM.PEER.REMOVE.<stream>`    a replica on a dead or removed server
 *   `$JS.API.STREAM.PEER.EVACUATE.<stream>`  a replica on a live server (drain,
 *                                           balance): the new one catches up first
 *   `$JS.API.STREAM.LEADER.STEPDOWN.<stream>` {"placement":{"preferred":…}}
 * Publishes `shoal.rebalance.<started|finished|failed|safe>` (core NATS).
 * KV shoal_plans: `lease` (one plan runs cluster-wide: compare-and-set with
 * a TTL), `servers`, `status`, `policy`, `run`.
 *
 * Any number of instances may run; only the lease holder plans and moves.
 * Where replicas go is src/placement's pure plan(); when, how fast and the
 * server states are ./logic.ts.
 */
import type { KV } from "@nats-io/kv";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { setTimeout as sleep } from "node:timers/promises";
import { defineActor, type ActorContext, type Handler, type Request } from "../../src/runtime/index.ts";
import { sharedKv } from "../../src/runtime/replicas.ts";
import { connectNats } from "../../src/connect.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { EVENTS_STREAM, ALERTS_STREAM, KV as KV_NAMES, kvStream, PLAN_KEYS, REBALANCER_COMMANDS, REBALANCER_SERVICE, rebalanceEventSubject, rebalancerSubject, type RebalanceEvent, type RebalancerCommand } from "../../src/subjects/index.ts";
import { plan as placementPlan, type Move, type PlacementServer, type PlacementStream } from "../../src/placement/index.ts";
import { exportRebalance } from "../../src/metrics/index.ts";
import {
  DEFAULT_REBALANCE_POLICY,
  command,
  emptyBook,
  eta,
  holdAstray,
  leaseDecision,
  observe,
  paceMs,
  parsePolicy,
  serverRows,
  serverStates,
  wentAstray,
  type Lease,
  type RebalancePolicy,
  type RebalanceStatus,
  type ServerBook,
  type ServerCommand,
  type TrackedMove,
} from "./logic.ts";

/** JetStream API subjects the rebalancer uses (JetStream's names, not Shoal's). */
const JS_API = {
  peerRemove: (s: string) => `$JS.API.STREAM.PEER.REMOVE.${s}`,
  peerEvacuate: (s: string) => `$JS.API.STREAM.PEER.EVACUATE.${s}`,
  stepDown: (s: string) => `$JS.API.STREAM.LEADER.STEPDOWN.${s}`,
};

/** Repair moves run this many at once (or maxConcurrent, if higher). */
const REPAIR_CONCURRENCY = 4;

/** Shoal's streams: buckets' object stores, Shoal's KV buckets, its event and alert streams. */
export function isShoalStream(name: string): boolean {
  return name.startsWith("OBJ_") || SHOAL_KV_STREAMS.has(name) || name === EVENTS_STREAM || name === ALERTS_STREAM;
}
const SHOAL_KV_STREAMS = new Set(Object.values(KV_NAMES).map(kvStream));

interface SeenStream extends PlacementStream {
  /** A move or catch-up is under way: no new move on it this round. */
  busy: boolean;
  /** Peers that report current (the leader included). */
  current: string[];
}

interface Snapshot {
  time: number;
  /** Servers that answered, or undefined without a system-account connection. */
  answered: Set<string>;
  capacity: Map<string, number>;
  streams: SeenStream[];
}

export interface RebalancerOptions {
  /** Pause between rounds when there is nothing to move (ms). */
  intervalMs?: number;
  /** Lease time to live (ms); renewed every round. */
  leaseTtlMs?: number;
  /** Policy defaults (KV shoal_plans `policy` overrides them at run time). */
  policy?: Partial<RebalancePolicy>;
}

/**
 * What it serves: one endpoint per command. The contract's `serves` and the
 * endpoints start() registers are both built from this table, so they
 * cannot drift apart (a handler missing for a command is a type error).
 */
const ENDPOINTS: ReadonlyArray<{ name: RebalancerCommand; subject: string }> = REBALANCER_COMMANDS.map((name) => ({ name, subject: rebalancerSubject(name) }));

export function makeRebalancer(opts: RebalancerOptions = {}) {
  const intervalMs = opts.intervalMs ?? 2000;
  const leaseTtlMs = opts.leaseTtlMs ?? Math.max(10_000, intervalMs * 5);
  const basePolicy = parsePolicy(opts.policy ?? {}, DEFAULT_REBALANCE_POLICY);
  return defineActor({
    kind: "rebalancer",
    description: "Shoal replica repair, drain, capacity and leader balance",
    contract: {
      serves: ENDPOINTS.map((e) => e.subject),
      consumes: ["$SYS.REQ.SERVER.PING.JSZ", "$JS.API.STREAM.LIST"],
      publishes: [rebalanceEventSubject(), "$JS.API.STREAM.PEER.REMOVE.<stream>", "$JS.API.STREAM.PEER.EVACUATE.<stream>", "$JS.API.STREAM.LEADER.STEPDOWN.<stream>"],
      kv: [KV_NAMES.plans],
    },
    service: { name: REBALANCER_SERVICE, version: "1.0.0", queue: REBALANCER_SERVICE },
    start: async (ctx: ActorContext) => {
      // short API timeouts: during an election a request to a dead leader should fail fast and be retried next round
      const jsm: JetStreamManager = await jetstreamManager(ctx.nc, { timeout: 3000 });
      const kv: KV = await sharedKv(ctx.js, ctx.jsm, KV_NAMES.plans, { history: 1 });
      let sys: NatsConnection | undefined;
      if (ctx.nats.sysUser) sys = await connectNats(ctx.nats, { system: true, name: `shoal-rebalancer-${ctx.id}-sys` });
      else ctx.log.warn("no system-account user configured (SHOAL_NATS_SYS_USER): servers are known only from stream replicas; a new empty server is not seen");

      const readJson = async <T>(key: string): Promise<{ value: T | null; rev: number }> => {
        const e = await kv.get(key);
        return e && e.operation === "PUT" && e.value.length > 0 ? { value: e.json<T>(), rev: e.revision } : { value: null, rev: e?.revision ?? 0 };
      };
      /** Compare-and-set update of one key; retried when another writer moved first. */
      const casUpdate = async <T>(key: string, fn: (cur: T | null) => T): Promise<T> => {
        for (let i = 0; ; i++) {
          const { value, rev } = await readJson<T>(key);
          const next = fn(value);
          const data = JSON.stringify(next);
          const ok = await (rev === 0 ? kv.create(key, data) : kv.update(key, data, rev)).then(
            () => true,
            (e: unknown) => {
              if (i >= 8) throw e;
              return false;
            },
          );
          if (ok) return next;
        }
      };

      /** Names of the servers that answer a $SYS JSZ ping now. */
      const answering = async (): Promise<Set<string>> => {
        const out = new Set<string>();
        if (!sys) return out;
        for await (const m of await sys.requestMany("$SYS.REQ.SERVER.PING.JSZ", "", { strategy: "stall", maxWait: 1500, stall: 300 })) {
          try {
            out.add(m.json<{ server: { name: string } }>().server.name);
          } catch {
            // not a jsz reply
          }
        }
        return out;
      };

      const collect = async (): Promise<Snapshot> => {
        const answered = new Set<string>();
        const capacity = new Map<string, number>();
        if (sys) {
          for await (const m of await sys.requestMany("$SYS.REQ.SERVER.PING.JSZ", "", { strategy: "stall", maxWait: 1500, stall: 300 })) {
            try {
              const r = m.json<{ server: { name: string }; data?: { config?: { max_storage?: number } } }>();
              answered.add(r.server.name);
              const cap = r.data?.config?.max_storage ?? 0;
              if (cap > 0) capacity.set(r.server.name, cap);
            } catch {
              // not a jsz reply
            }
          }
        }
        const streams: SeenStream[] = [];
        for await (const si of jsm.streams.list()) {
          if (!isShoalStream(si.config.name)) continue;
          const replicas = si.config.num_replicas ?? 1;
          const leader = si.cluster?.leader ?? null;
          const reps = si.cluster?.replicas ?? [];
          const peers = [...(leader ? [leader] : []), ...reps.map((r) => r.name)];
          if (!sys) {
            if (leader) answered.add(leader);
            for (const r of reps) if (!r.offline) answered.add(r.name);
          }
          const current = [...(leader ? [leader] : []), ...reps.filter((r) => r.current && !r.offline).map((r) => r.name)];
          // busy: no leader, more peers than configured (a move under way), or a live peer catching up
          const busy = leader === null || peers.length > replicas || reps.some((r) => !r.current && !r.offline && answered.has(r.name));
          streams.push({ name: si.config.name, replicas, bytes: si.state.bytes, peers, leader, busy, current });
        }
        // A server that a stream's leader counts as its leader or a current
        // replica is up, whether or not our ping reached it: the system
        // connection can sit on a server cut off from the others, which then
        // hears only itself, while the stream list (read through a server
        // with a quorum) shows the rest serving. Without this, a cut longer
        // than the grace period would have the others repaired away.
        for (const st of streams) for (const n of st.current) answered.add(n);
        return { time: Date.now(), answered, capacity, streams };
      };

      const readBook = async () => (await readJson<ServerBook>(PLAN_KEYS.servers)).value ?? emptyBook();
      const readPolicy = async (): Promise<RebalancePolicy> => {
        const { value } = await readJson<unknown>(PLAN_KEYS.policy);
        try {
          return parsePolicy(value, basePolicy);
        } catch (e) {
          ctx.log.warn({ err: e }, "KV shoal_plans policy is not valid; using the defaults");
          return { ...basePolicy };
        }
      };
      const graceOf = (p: RebalancePolicy) => p.graceMs ?? ctx.health.repairGraceMs;

      /** The servers as placement sees them, and the book brought up to date (written when it changed). */
      const view = async (snap: Snapshot, policy: RebalancePolicy, write: boolean): Promise<{ book: ServerBook; servers: PlacementServer[] }> => {
        const answered = [...snap.answered];
        const stale = await readBook();
        const known = new Set(Object.keys(stale.servers));
        // a peer of a stream that no server list has shown yet is a server too (seen as long gone)
        const fromPeers = snap.streams.flatMap((s) => s.peers).filter((p) => !known.has(p) && !snap.answered.has(p));
        const grow = (b: ServerBook) => {
          const o = observe(b, answered, snap.time);
          for (const p of fromPeers) o.servers[p] ??= { lastSeen: snap.time };
          return o;
        };
        let book = grow(stale);
        const changed = answered.some((n) => !stale.servers[n] || stale.servers[n]!.repair || snap.time - stale.servers[n]!.lastSeen > intervalMs * 2) || fromPeers.length > 0;
        if (write && changed) book = await casUpdate<ServerBook>(PLAN_KEYS.servers, (cur) => grow(cur ?? emptyBook()));
        return { book, servers: serverStates(book, snap.answered, snap.time, graceOf(policy), snap.capacity) };
      };

      const planFor = (servers: PlacementServer[], snap: Snapshot, policy: RebalancePolicy, balanceNow: boolean): Move[] => {
        const pol = { ...policy, balance: policy.balance && (policy.auto || balanceNow), leaders: policy.leaders && (policy.auto || balanceNow) };
        return placementPlan(servers, snap.streams, pol);
      };

      // --- progress ----------------------------------------------------------------
      let status: RebalanceStatus = { v: 1, state: "idle", by: ctx.id, time: new Date().toISOString(), planned: 0, running: 0, done: 0, failed: 0, bytesLeft: 0, bytesDone: 0, etaSeconds: 0, moves: [], servers: [] };
      let run: { since: number; done: number; failed: number; bytesDone: number; history: TrackedMove[] } | undefined;
      const running = new Map<string, TrackedMove>();
      /** Streams seen short of peers, since when (healShort). */
      const shortSince = new Map<string, number>();
      const safeAnnounced = new Set<string>();
      /** Streams whose balance move landed elsewhere than planned, and when (holdAstray). */
      const astray = new Map<string, number>();
      /** The servers that take replicas ("up"), as of the last round. */
      let targets: ReadonlySet<string> = new Set();

      const event = (ev: RebalanceEvent, body: Record<string, unknown>) => ctx.nc.publish(rebalanceEventSubject(ev), JSON.stringify({ v: 1, event: ev, time: new Date().toISOString(), by: ctx.id, ...body }));

      const publishStatus = async (moves: Move[], servers: PlacementServer[], book: ServerBook, snap: Snapshot, policy: RebalancePolicy, note?: string) => {
        const busyMoves = moves.filter((m) => !running.has(m.stream));
        const bytesLeft = [...running.values()].reduce((a, t) => a + t.move.bytes, 0) + busyMoves.reduce((a, m) => a + m.bytes, 0);
        const active = moves.length > 0 || running.size > 0;
        if (active && !run) run = { since: Date.now(), done: 0, failed: 0, bytesDone: 0, history: [] };
        const r = run;
        status = {
          v: 1,
          state: !active ? "idle" : note ? "blocked" : "moving",
          by: ctx.id,
          time: new Date().toISOString(),
          ...(r && active ? { since: new Date(r.since).toISOString() } : {}),
          planned: busyMoves.length,
          running: running.size,
          done: r?.done ?? status.done,
          failed: r?.failed ?? status.failed,
          bytesLeft,
          bytesDone: r?.bytesDone ?? status.bytesDone,
          etaSeconds: eta(bytesLeft, r?.bytesDone ?? 0, r ? Date.now() - r.since : 0, policy.maxBytesPerSec),
          moves: [...(r?.history ?? []).slice(-20), ...running.values(), ...busyMoves.slice(0, 50).map((m): TrackedMove => ({ move: m, state: "planned" }))],
          servers: serverRows(servers, book, snap.streams),
          ...(note ? { note } : {}),
        };
        if (!active) run = undefined;
        exportRebalance(status);
        ctx.setStatus({ rebalance: status.state, planned: status.planned, running: status.running });
        await kv.put(PLAN_KEYS.status, JSON.stringify(status)).catch(() => undefined);
        for (const row of status.servers) {
          if (row.mark === "drained" && row.safeToStop && !safeAnnounced.has(row.name)) {
            safeAnnounced.add(row.name);
            event("safe", { server: row.name });
            ctx.log.info({ server: row.name }, "drained server holds no Shoal replica or leadership: safe to stop");
          }
          if (!(row.mark === "drained" && row.safeToStop)) safeAnnounced.delete(row.name);
        }
      };

      // --- moves -------------------------------------------------------------------------
      const apiRequest = async (subject: string, body: unknown) => {
        const m = await ctx.nc.request(subject, JSON.stringify(body), { timeout: 5000 });
        const r = m.json<{ error?: { code: number; err_code?: number; description?: string }; success?: boolean }>();
        if (r.error) throw new ShoalError("ServiceUnavailable", `JetStream refused ${subject}: ${r.error.description ?? r.error.code}`, { detail: { code: r.error.err_code ?? r.error.code } });
      };
      const info = (s: string) => jsm.streams.info(s).catch(() => null);

      const carryOut = async (t: TrackedMove, policy: RebalancePolicy): Promise<void> => {
        const m = t.move;
        const t0 = Date.now();
        t.state = "running";
        t.started = t0;
        running.set(m.stream, t);
        event("started", { move: m });
        ctx.log.info({ move: m }, "move started");
        try {
          const deadline = t0 + policy.moveTimeoutMs + (m.bytes / policy.maxBytesPerSec) * 1000;
          if (m.kind === "leader") {
            await apiRequest(JS_API.stepDown(m.stream), { placement: { preferred: m.to } });
            for (;;) {
              const si = await info(m.stream);
              if (si?.cluster?.leader && si.cluster.leader !== m.from) {
                t.landed = si.cluster.leader;
                break;
              }
              if (Date.now() > deadline || ctx.signal.aborted) throw new ShoalError("Timeout", `leadership of ${m.stream} did not move off ${m.from}`);
              await sleep(200);
            }
          } else {
            const before = (await info(m.stream))?.cluster;
            const old = new Set([before?.leader, ...(before?.replicas ?? []).map((r) => r.name)].filter(Boolean) as string[]);
            await apiRequest(m.reason === "repair" ? JS_API.peerRemove(m.stream) : JS_API.peerEvacuate(m.stream), { peer: m.from });
            let shortAt = 0;
            let offlineAt = 0;
            let polls = 0;
            let memberDown = false;
            for (;;) {
              const si = await info(m.stream);
              const c = si?.cluster;
              if (c?.leader && si) {
                const peers = [c.leader, ...(c.replicas ?? []).map((r) => r.name)];
                const current = (c.replicas ?? []).every((r) => r.current && !r.offline);
                if (!peers.includes(m.from) && peers.length === si.config.num_replicas && current) {
                  t.landed = peers.find((p) => !old.has(p)) ?? m.to;
                  break;
                }
                // the peer is gone but JetStream placed no replacement: the stream is short, and healShort makes it whole
                if (!peers.includes(m.from) && peers.length < si.config.num_replicas) {
                  shortAt ||= Date.now();
                  if (Date.now() - shortAt > 8000) {
                    t.landed = "-";
                    shortSince.set(m.stream, 0);
                    break;
                  }
                } else shortAt = 0;
                // an evacuation waits for every member; with one gone offline it stalls: give up soon, the repair goes first next round
                // (the leader marks a dead member offline only after a while: ask the servers too, every ~2 s)
                if (m.reason !== "repair" && sys && ++polls % 8 === 0) {
                  const up = await answering().catch(() => null);
                  memberDown = up !== null && peers.some((p) => !up.has(p));
                }
                if (m.reason !== "repair" && ((c.replicas ?? []).some((r) => r.offline) || memberDown)) {
                  offlineAt ||= Date.now();
                  if (Date.now() - offlineAt > 5000) throw new ShoalError("ServiceUnavailable", `a member of ${m.stream} went offline during the move; planned again`);
                } else offlineAt = 0;
              }
              if (Date.now() > deadline || ctx.signal.aborted) throw new ShoalError("Timeout", `replica of ${m.stream} on ${m.from} was not replaced in time`);
              await sleep(250);
            }
          }
          t.state = "done";
          t.ended = Date.now();
          if (wentAstray(m, t.landed, targets)) astray.set(m.stream, t.ended);
          if (run) {
            run.done++;
            run.bytesDone += m.bytes;
          }
          event("finished", { move: m, landed: t.landed, ms: t.ended - t0 });
          ctx.log.info({ move: m, landed: t.landed, ms: t.ended - t0 }, "move finished");
          // repairs are not paced: a stream short of replicas is at risk until it is whole again
          const wait = m.reason === "repair" ? 0 : paceMs(m.bytes, Date.now() - t0, policy.maxBytesPerSec);
          if (wait > 0) await sleep(wait, undefined, { signal: ctx.signal }).catch(() => undefined);
        } catch (e) {
          t.state = "failed";
          t.ended = Date.now();
          t.error = (e as Error).message;
          if (run) run.failed++;
          event("failed", { move: m, error: t.error });
          ctx.log.warn({ err: e, move: m }, "move failed; the next round plans again");
        } finally {
          running.delete(m.stream);
          run?.history.push(t);
        }
      };

      // --- lease ---------------------------------------------------------------------------
      let holding = false;
      const holdLease = async (): Promise<boolean> => {
        const now = Date.now();
        const { value, rev } = await readJson<Lease>(PLAN_KEYS.lease);
        const d = leaseDecision(value, ctx.id, now);
        if (d === "wait") return (holding = false);
        const next: Lease = { v: 1, owner: ctx.id, until: now + leaseTtlMs };
        const ok = await (rev === 0 ? kv.create(PLAN_KEYS.lease, JSON.stringify(next)) : kv.update(PLAN_KEYS.lease, JSON.stringify(next), rev)).then(
          () => true,
          () => false,
        );
        if (ok && !holding) ctx.log.info({ ttlMs: leaseTtlMs }, "took the rebalance lease: this instance plans");
        return (holding = ok);
      };

      /**
       * A stream with fewer peers than its replica count (it lost two at
       * once, or a peer-remove found no replacement) is healed by JetStream's
       * meta leader only on some later reconciliation — measured: not within
       * 3 minutes on 2.15.1. When such a stream has stayed short for a while
       * and a live server could take a replica, the rebalancer asks for the
       * replica count again: down to the peers it has, then back up, which
       * makes the meta leader place the missing replicas now (JetStream still
       * copies and catches up).
       */
      const healShort = async (snap: Snapshot, servers: PlacementServer[]): Promise<boolean> => {
        const live = new Set(servers.filter((s) => s.state === "up").map((s) => s.name));
        const wait = Math.max(5000, intervalMs * 3);
        for (const st of snap.streams) {
          // (a peer on a dead or removed server does not stop it: JetStream refuses to remove a peer from a short stream, so it is made whole first)
          // a replica still catching up waits, but not for ever (seen: a short stream whose other replica never reported current)
          const short = st.leader !== null && live.has(st.leader) && st.peers.length < st.replicas && [...live].some((n) => !st.peers.includes(n));
          if (!short) {
            shortSince.delete(st.name);
            continue;
          }
          const since = shortSince.get(st.name) ?? snap.time;
          shortSince.set(st.name, since);
          if (snap.time - since < (st.busy ? wait * 3 : wait)) continue;
          shortSince.delete(st.name);
          const t: TrackedMove = { move: { kind: "replica", stream: st.name, from: "-", to: "-", bytes: st.bytes, reason: "repair" }, state: "running", started: Date.now() };
          event("started", { move: t.move, note: `R${st.replicas} stream with ${st.peers.length} peers: replica count asked again` });
          try {
            await jsm.streams.update(st.name, { num_replicas: st.peers.length });
            await jsm.streams.update(st.name, { num_replicas: st.replicas });
            t.state = "done";
            event("finished", { move: t.move });
            ctx.log.warn({ stream: st.name, peers: st.peers, replicas: st.replicas }, "stream short of replicas: asked JetStream to place the missing ones");
          } catch (e) {
            t.state = "failed";
            t.error = (e as Error).message;
            event("failed", { move: t.move, error: t.error });
            ctx.log.warn({ err: e, stream: st.name }, "could not heal a stream short of replicas; next round retries");
          }
          t.ended = Date.now();
          run?.history.push(t);
          return true;
        }
        return false;
      };

      let lastRunSeen = 0;
      const round = async (): Promise<boolean> => {
        if (!(await holdLease())) return false;
        const policy = await readPolicy();
        const snap = await collect();
        const { book, servers } = await view(snap, policy, true);
        const runReq = (await readJson<{ at: number }>(PLAN_KEYS.run)).value?.at ?? 0;
        const balanceNow = runReq > lastRunSeen;
        targets = new Set(servers.filter((s) => s.state === "up").map((s) => s.name));
        const moves = holdAstray(planFor(servers, snap, policy, balanceNow || run !== undefined), astray, Date.now());
        const byStream = new Map(snap.streams.map((s) => [s.name, s]));
        // a short stream is healed first (healShort): JetStream refuses peer removals that would leave it short
        const ready = moves.filter((m) => {
          const st = byStream.get(m.stream);
          return st && !st.busy && !running.has(m.stream) && (m.kind === "leader" || st.peers.length >= st.replicas);
        });
        const suspect = servers.filter((s) => s.state === "suspect").map((s) => s.name);
        const note = moves.length > 0 && ready.length === 0 && running.size === 0 ? "every stream to move is busy (catching up or electing a leader)" : suspect.length ? `server(s) ${suspect.join(", ")} not answering, within the grace period: no balance moves until settled` : undefined;
        await publishStatus(moves, servers, book, snap, policy, moves.length > 0 && ready.length === 0 ? note : undefined);
        if (await healShort(snap, servers)) return true;
        if (moves.length === 0 && running.size === 0) {
          if (balanceNow) lastRunSeen = runReq;
          return false;
        }
        // one move per stream at a time, at most maxConcurrent at once
        const seen = new Set<string>();
        // repairs first and up to REPAIR_CONCURRENCY at once (a short stream is at risk; one slow repair must not hold the others)
        const distinct = ready.filter((m) => (seen.has(m.stream) ? false : (seen.add(m.stream), true)));
        const repairs = distinct.filter((m) => m.reason === "repair");
        const batch = repairs.length > 0 ? repairs.slice(0, Math.max(policy.maxConcurrent, REPAIR_CONCURRENCY)) : distinct.slice(0, Math.max(0, policy.maxConcurrent - running.size));
        if (batch.length === 0) return false;
        await Promise.all(batch.map((m) => carryOut({ move: m, state: "planned" }, policy)));
        await kv.put(PLAN_KEYS.lease, JSON.stringify({ v: 1, owner: ctx.id, until: Date.now() + leaseTtlMs })).catch(() => undefined);
        return true;
      };

      const loop = async () => {
        while (!ctx.signal.aborted) {
          let busy = false;
          try {
            busy = await round();
          } catch (e) {
            if (!ctx.signal.aborted) ctx.log.warn({ err: e }, "rebalance round failed; the next one retries");
          }
          if (!busy) await sleep(intervalMs, undefined, { signal: ctx.signal }).catch(() => undefined);
        }
      };

      // --- requests ----------------------------------------------------------------------------
      const serverOf = (req: Request): string => {
        const body = req.json();
        const s = body["server"];
        if (typeof s !== "string" || s.length === 0 || s.length > 256) throw new ShoalError("InvalidArgument", "a server name is required: {\"server\":\"<name>\"}");
        return s;
      };
      const fresh = async (balanceNow: boolean) => {
        const policy = await readPolicy();
        const snap = await collect();
        const { book, servers } = await view(snap, policy, false);
        const moves = planFor(servers, snap, policy, balanceNow);
        return { policy, snap, book, servers, moves };
      };
      const onServer = (cmd: ServerCommand) => async (req: Request) => {
        const server = serverOf(req);
        if (cmd !== "repair" && sys) {
          // a server that answers now but was never written down yet counts as known (one $SYS ping, no JetStream API)
          const now = Date.now();
          const answered: string[] = [];
          for await (const m of await sys.requestMany("$SYS.REQ.SERVER.PING.JSZ", "", { strategy: "stall", maxWait: 1500, stall: 300 })) {
            try {
              answered.push(m.json<{ server: { name: string } }>().server.name);
            } catch {
              // not a jsz reply
            }
          }
          if (answered.includes(server)) await casUpdate<ServerBook>(PLAN_KEYS.servers, (cur) => observe(cur ?? emptyBook(), [server], now));
        }
        let book: ServerBook;
        try {
          book = await casUpdate<ServerBook>(PLAN_KEYS.servers, (cur) => command(cur ?? emptyBook(), server, cmd));
        } catch (e) {
          if (cmd === "repair") return undefined; // a repair request for a server never seen: nothing of it to repair
          throw e;
        }
        ctx.log.info({ server, cmd }, `server ${cmd}`);
        if (cmd === "repair") return undefined;
        // the server table as it is now, when JetStream answers (the command is recorded either way)
        const rows = await fresh(false).then(
          ({ snap, book: b, servers }) => serverRows(servers, b, snap.streams),
          () => undefined,
        );
        return { server, command: cmd, mark: book.servers[server]?.mark ?? null, ...(rows ? { servers: rows } : {}) } as unknown as Record<string, unknown>;
      };

      const handlers: Record<RebalancerCommand, Handler> = {
        status: async () => {
          if (holding) return status as unknown as Record<string, unknown>;
          const { value } = await readJson<RebalanceStatus>(PLAN_KEYS.status);
          return (value ?? status) as unknown as Record<string, unknown>;
        },
        plan: async () => {
          const { snap, book, servers, moves } = await fresh(true);
          return { v: 1, moves, bytes: moves.reduce((a, m) => a + m.bytes, 0), servers: serverRows(servers, book, snap.streams) };
        },
        run: async () => {
          await kv.put(PLAN_KEYS.run, JSON.stringify({ at: Date.now() }));
          const { moves } = await fresh(true);
          return { v: 1, accepted: true, moves: moves.length, bytes: moves.reduce((a, m) => a + m.bytes, 0) };
        },
        servers: async () => {
          const { snap, book, servers } = await fresh(false);
          return { v: 1, servers: serverRows(servers, book, snap.streams) };
        },
        drain: onServer("drain"),
        undrain: onServer("undrain"),
        remove: onServer("remove"),
        repair: onServer("repair"),
      };

      return {
        endpoints: ENDPOINTS.map((e) => ({ ...e, handler: handlers[e.name] })),
        loops: [{ name: "rebalance", run: loop }],
        close: async () => {
          if (holding) {
            // hand the lease on at once instead of letting it lapse
            const { value, rev } = await readJson<Lease>(PLAN_KEYS.lease).catch(() => ({ value: null, rev: 0 }));
            if (value?.owner === ctx.id && rev) await kv.update(PLAN_KEYS.lease, JSON.stringify({ ...value, until: 0 }), rev).catch(() => undefined);
          }
          await sys?.close().catch(() => undefined);
        },
      };
    },
  });
}

/** The rebalancer with its default settings (`shoal start --actors rebalancer`, `shoal dev`). */
export const rebalancer = makeRebalancer();
