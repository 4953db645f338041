/**
 * health-monitor — knows what the cluster is doing and says so.
 *
 * Looks every health.intervalMs at:
 *   - the NATS servers: `$SYS.REQ.SERVER.PING` (who answers) and
 *     `$SYS.REQ.SERVER.PING.JSZ` (meta leader, JetStream storage used against
 *     the limit), over a system-account connection;
 *   - every stream's replicas (current, lagging, offline) via the JetStream API;
 *   - actor presence: the heartbeats on shoal.hb.> (and KV shoal_actors at start).
 * Conditions (logic.ts) become alerts after health.debounceMs, and are
 * resolved after they have been gone as long. Each alert is raised once and
 * resolved once, across restarts and with several instances: its state lives
 * in KV shoal_health (key `alerts`, changed only with compare-and-set, so
 * exactly one instance makes each transition) and the events on
 * `shoal.alerts.<severity>.<code>` (stream SHOAL_ALERTS) carry a Nats-Msg-Id
 * naming the transition, so a retried publish is dropped.
 *
 * Serves `shoal.v1.health` (service `shoal-health`) with the health view, also
 * kept in KV shoal_health under `view`. A server down longer than
 * health.repairGraceMs publishes `shoal.ctl.rebalancer.repair` once. While a
 * server's JetStream storage is past health.storageWarnRatio, every look
 * asks the storage actors' sweep control for a pressure sweep (replaced
 * versions reclaimed with the short storage.pressureReadGraceMs).
 * Optional webhook: every alert event is POSTed to health.webhookUrl with retries.
 */
import { Kvm, type KV } from "@nats-io/kv";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { setTimeout as sleep } from "node:timers/promises";
import { defineActor, type ActorContext, type Handler } from "../../src/runtime/index.ts";
import { retry } from "../../src/runtime/backoff.ts";
import { intendedReplicas, raiseReplicas, sharedKv, sharedStream, sharedStreamNames } from "../../src/runtime/replicas.ts";
import { decodeHeartbeat, listPresence } from "../../src/runtime/presence.ts";
import { connectNats } from "../../src/connect.ts";
import type { HealthConfig } from "../../src/config.ts";
import { ALERTS_STREAM, KV as KV_NAMES, alertSubject, alertsStreamSubject, controlSubject, healthSubject, heartbeatWildcard, kvSubjectAll } from "../../src/subjects/index.ts";
import { publish } from "../../src/jet/index.ts";
import { exportHealth } from "../../src/metrics/index.ts";
import { ALERT_SEVERITY, Debounce, conditionsOf, stalledOf, learn, mergeKnown, raiseId, resolveId, viewOf, type AlertEvent, type AlertState, type Condition, type HealthView, type Known, type ServerSeen, type Snapshot, type StreamSeen } from "./logic.ts";

const ALERT_CODES = Object.entries(ALERT_SEVERITY).map(([code, severity]) => ({ code, severity }));

/** A condition that has held, as an alert raised at `time` (not yet published). */
const alertOf = (c: Condition, time: number): Omit<AlertState, "published"> => ({ v: 1, id: c.id, code: c.code, severity: c.severity, subject: c.subject, message: c.message, since: new Date(time).toISOString(), state: "raised" });

export const HEALTH_SERVICE = "shoal-health";
const ALERTS_DUPLICATE_WINDOW_MS = 3_600_000;

/** Live actor instances, from the heartbeats on shoal.hb.> (core NATS: works while JetStream elects leaders). */
class HeartbeatTracker {
  private last = new Map<string, { kind: string; at: number; stalled?: Record<string, number> }>();
  constructor(private readonly ttlMs: number) {}
  seen(kind: string, id: string, at: number, info?: unknown): void {
    const stalled = stalledOf(info);
    this.last.set(id, { kind, at, ...(Object.keys(stalled).length > 0 ? { stalled } : {}) });
  }
  /** Per bucket, the largest count of stalled restatements a live instance reports. */
  stalled(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const h of this.last.values()) {
      if (now - h.at > this.ttlMs || !h.stalled) continue;
      for (const [b, n] of Object.entries(h.stalled)) out[b] = Math.max(out[b] ?? 0, n);
    }
    return out;
  }
  gone(id: string): void {
    this.last.delete(id);
  }
  live(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, h] of this.last) {
      if (now - h.at > this.ttlMs) this.last.delete(id);
      else out[h.kind] = (out[h.kind] ?? 0) + 1;
    }
    return out;
  }
}

/** One look at the cluster: servers, the meta group, streams and actors. */
async function collect(ctx: ActorContext, sys: NatsConnection | undefined, beats: HeartbeatTracker, lastStreams: StreamSeen[] | undefined): Promise<Snapshot> {
  // The three reads go at once: a look takes the slowest of them (a stream
  // list sent to a lost meta leader times out), not their sum.
  const [servers, jsz, streams] = await Promise.all([sys ? pingServers(sys) : [], sys ? pingJsz(sys) : [], listStreams(ctx, lastStreams)]);
  let metaLeader: string | null | undefined;
  let clusterSize: number | undefined;
  if (sys) {
    const byName = new Map(servers.map((s) => [s.name, s]));
    let clustered = false;
    let leader: string | null = null;
    for (const r of jsz) {
      const s = byName.get(r.server.name);
      if (s && r.data) {
        s.storage = r.data.storage ?? 0;
        if (r.data.config?.max_storage && r.data.config.max_storage > 0) s.maxStorage = r.data.config.max_storage;
      }
      if (r.data?.meta_cluster && (r.data.meta_cluster.cluster_size ?? 0) > 1) {
        clustered = true;
        clusterSize = Math.max(clusterSize ?? 0, r.data.meta_cluster.cluster_size ?? 0);
        if (r.data.meta_cluster.leader) leader = r.data.meta_cluster.leader;
      }
    }
    metaLeader = clustered ? leader : undefined;
  }
  // Shoal's shared state is meant to be R3 on a cluster (src/runtime/replicas.ts)
  const shared = new Set(sharedStreamNames());
  const intended = intendedReplicas(ctx.nc, clusterSize);
  const now = Date.now();
  return { time: now, servers, metaLeader, streams: streams.map((st) => ({ ...st, ...(shared.has(st.name) ? { intended } : {}) })), actors: beats.live(now), restateStalled: beats.stalled(now) };
}

/** The servers that answer a statsz ping. */
async function pingServers(sys: NatsConnection): Promise<ServerSeen[]> {
  const byName = new Map<string, ServerSeen>();
  for await (const m of await sys.requestMany("$SYS.REQ.SERVER.PING", "", { strategy: "stall", maxWait: 1000, stall: 250 })) {
    try {
      const r = m.json<{ server: { name: string; cluster?: string; ver?: string; jetstream?: boolean } }>();
      byName.set(r.server.name, { name: r.server.name, jetstream: r.server.jetstream ?? false, ...(r.server.cluster ? { cluster: r.server.cluster } : {}), ...(r.server.ver ? { version: r.server.ver } : {}) });
    } catch {
      // not a statsz reply
    }
  }
  return [...byName.values()];
}

interface JszReply {
  server: { name: string };
  data?: { storage?: number; config?: { max_storage?: number }; meta_cluster?: { leader?: string; cluster_size?: number } };
}

/** Every server's JSZ: storage used against its limit, and the meta group. */
async function pingJsz(sys: NatsConnection): Promise<JszReply[]> {
  const out: JszReply[] = [];
  for await (const m of await sys.requestMany("$SYS.REQ.SERVER.PING.JSZ", "", { strategy: "stall", maxWait: 1000, stall: 250 })) {
    try {
      const r = m.json<JszReply>();
      if (r.server?.name) out.push(r);
    } catch {
      // not a jsz reply
    }
  }
  return out;
}

/**
 * Every stream's replicas. When the list cannot be read (the meta leader
 * was on the server just lost, and the others have not elected one yet),
 * the last list read stands in: its replicas on servers that stopped
 * answering are then lost now (conditionsOf), and no alert of its streams
 * is resolved by a list that merely failed.
 */
async function listStreams(ctx: ActorContext, lastStreams: StreamSeen[] | undefined): Promise<StreamSeen[]> {
  const streams: StreamSeen[] = [];
  try {
    for await (const si of ctx.jsm.streams.list()) {
      streams.push({
        name: si.config.name,
        replicas: si.config.num_replicas ?? 1,
        leader: si.cluster?.leader ?? (si.config.num_replicas > 1 ? null : "local"),
        peers: (si.cluster?.replicas ?? []).map((p) => ({ name: p.name, current: p.current, offline: p.offline ?? false, lag: p.lag ?? 0 })),
        consumers: si.state.consumer_count,
        ...(si.config.max_consumers > 0 ? { maxConsumers: si.config.max_consumers } : {}),
      });
    }
    return streams;
  } catch (e) {
    ctx.log.debug({ err: e }, "stream list failed; the last list stands in");
    return lastStreams ?? streams;
  }
}

/** What it serves; the contract's `serves` and the registered endpoints are both built from it. */
const ENDPOINTS = [{ name: "health", subject: healthSubject() }] as const;

export const healthMonitor = defineActor({
  kind: "health-monitor",
  description: "Shoal cluster health, alerts and repair triggers",
  contract: {
    serves: ENDPOINTS.map((e) => e.subject),
    consumes: ["$SYS.REQ.SERVER.PING (statsz)", "$SYS.REQ.SERVER.PING.JSZ", "$JS.API.STREAM.LIST", kvSubjectAll(KV_NAMES.actors)],
    publishes: [`${alertSubject()} (<severity>.<code>, stream ${ALERTS_STREAM})`, controlSubject("rebalancer", "repair"), `${controlSubject("storage", "sweep")} ({"pressure":true} while JetStream storage is past health.storageWarnRatio)`],
    kv: [KV_NAMES.health, KV_NAMES.actors],
  },
  service: { name: HEALTH_SERVICE, version: "1.0.0", queue: HEALTH_SERVICE },
  start: async (actorCtx: ActorContext) => {
    const cfg: HealthConfig = actorCtx.health;
    // Short request timeouts: while a stream leader is re-elected after a
    // server loss, a request sent to the dead leader should fail fast and be
    // retried on the next tick, not hold the whole check for 5 s.
    const ctx: ActorContext = { ...actorCtx, js: jetstream(actorCtx.nc, { timeout: 1500 }), jsm: await jetstreamManager(actorCtx.nc, { timeout: 1500 }), setStatus: (i) => actorCtx.setStatus(i) };
    // alert state and alerts must outlive the loss of a server: R3 on a cluster
    const kv: KV = await sharedKv(ctx.js, ctx.jsm, KV_NAMES.health, { history: 1 });
    await sharedStream(ctx.jsm, { name: ALERTS_STREAM, subjects: [alertsStreamSubject()], allow_direct: true, duplicate_window: ALERTS_DUPLICATE_WINDOW_MS * 1e6, max_age: 30 * 86_400_000 * 1e6, description: "Shoal alerts raised and resolved (docs/alerts.md)" });
    let sys: NatsConnection | undefined;
    if (ctx.nats.sysUser) sys = await connectNats(ctx.nats, { system: true, name: `shoal-health-${ctx.id}-sys` });
    else ctx.log.warn("no system-account user configured (SHOAL_NATS_SYS_USER): server and meta-leader checks are off");

    const debounce = new Debounce(cfg.debounceMs);
    let view: HealthView | undefined;

    const readKnown = async (): Promise<Known> => {
      const e = await kv.get("known");
      return e && e.operation === "PUT" ? e.json<Known>() : { servers: [], actorKinds: [] };
    };
    // All open alerts in one KV key, changed only with compare-and-set: exactly
    // one instance makes each transition. (Listing keys would create a consumer,
    // which nats-server 2.9.10 often fails to do while a server is down.)
    const readAlerts = async (): Promise<{ map: Record<string, AlertState>; rev: number }> => {
      const e = await kv.get("alerts");
      return e && e.operation === "PUT" ? { map: e.json<Record<string, AlertState>>(), rev: e.revision } : { map: {}, rev: 0 };
    };
    const writeAlerts = async (map: Record<string, AlertState>, rev: number): Promise<boolean> => {
      const data = JSON.stringify(map);
      return (rev === 0 ? kv.create("alerts", data) : kv.update("alerts", data, rev)).then(
        () => true,
        () => false,
      );
    };
    const emit = async (a: AlertState, state: "raised" | "resolved") => {
      const ev: AlertEvent = { v: 1, id: a.id, code: a.code, severity: a.severity, subject: a.subject, state, message: a.message, since: a.since, time: new Date().toISOString() };
      await publish(ctx.js, alertSubject(a.severity, a.code), JSON.stringify(ev), { msgId: state === "raised" ? raiseId(a) : resolveId(a), attemptMs: 2000, deadlineMs: 10_000, signal: ctx.signal });
      if (cfg.webhookUrl) {
        const url = cfg.webhookUrl;
        void retry(
          async () => {
            const r = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ev), signal: AbortSignal.timeout(5000) });
            if (!r.ok) throw new Error(`webhook answered ${r.status}`);
          },
          { attempts: 6, baseMs: 500, maxMs: 30_000, retryable: () => true, signal: ctx.signal },
        ).catch((e: unknown) => ctx.log.warn({ err: e, alert: a.id }, "alert webhook failed"));
      }
      ctx.log.info({ alert: a.id, state }, `alert ${state}`);
    };

    const beats = new HeartbeatTracker(ctx.runtime.presenceTtlMs);
    const hbSub = ctx.nc.subscribe(heartbeatWildcard(), {
      callback: (_e, m) => {
        try {
          const h = decodeHeartbeat(m.data);
          if (h.status === "draining") beats.gone(h.id);
          else beats.seen(h.kind, h.id, Date.now(), h.info);
        } catch {
          // not a heartbeat
        }
      },
    });
    // actors already running: their presence entries (best effort; heartbeats follow)
    try {
      const p = await listPresence(ctx.jsm, await new Kvm(ctx.js).open(KV_NAMES.actors));
      for (const [kind, list] of p.byKind) for (const h of list) beats.seen(kind, h.id, Date.now(), h.info);
    } catch {
      // heartbeats will tell
    }

    /** Shared streams below their intended replicas (created while peers were missing): raised once the peers exist. */
    const raiseShared = async (snap: Snapshot) => {
      for (const st of snap.streams) {
        if (st.intended === undefined || st.replicas >= st.intended) continue;
        const raised = await raiseReplicas(ctx.jsm, st.name, st.intended).catch((e: unknown) => {
          ctx.log.debug({ err: e, stream: st.name }, "raising replicas failed; next check retries");
          return false;
        });
        if (raised) ctx.log.warn({ stream: st.name, from: st.replicas, to: st.intended }, "shared stream raised to its intended replicas");
      }
    };

    // What this instance knows without the KV: the streams last listed, the
    // servers and actor kinds ever seen (merged with the KV's), the open
    // alerts as last read.
    let lastStreams: StreamSeen[] | undefined;
    let known: Known = { servers: [], actorKinds: [] };
    let open: Record<string, AlertState> = {};

    /** The view served on shoal.v1.health and the metrics, from one look and the alerts given. */
    const show = (snap: Snapshot, conds: Condition[], alerts: AlertState[]) => {
      view = viewOf(snap, known, conds, alerts, ctx.id);
      exportHealth(view, ALERT_CODES);
      ctx.setStatus({ healthy: view.healthy, alerts: view.alerts.length });
    };

    // The durable part of a look (KV shoal_health, SHOAL_ALERTS, repair
    // requests) runs one at a time beside the looks: while those streams
    // elect new leaders it may take seconds, and the view must not wait.
    let persisting: Promise<void> | undefined;
    const tick = async (wait = false) => {
      const step = await look();
      if (!persisting) {
        persisting = persist(step)
          .catch((e: unknown) => {
            if (!ctx.signal.aborted) ctx.log.warn({ err: e }, "recording the health check failed; the next one retries");
          })
          .finally(() => (persisting = undefined));
      }
      if (wait) await persisting;
    };

    const look = async () => {
      const snap = await collect(ctx, sys, beats, lastStreams);
      lastStreams = snap.streams;
      known = learn(known, snap);
      const conds = conditionsOf(snap, known, cfg.storageWarnRatio);
      // Storage pressure: a server's JetStream storage past health.storageWarnRatio asks the
      // storage actors to reclaim replaced versions now (the sweep control with `pressure: true`;
      // an instance skips it while its own runs), at every look while it lasts — not after the
      // alert's debounce, which is for people: at 130 MB/s the last 10 % of a 10 GB store go in 8 s
      if (conds.some((c) => c.code === "storage-near-limit")) ctx.nc.publish(controlSubject("storage", "sweep"), JSON.stringify({ v: 1, pressure: true }));
      const byId = new Map(conds.map((c) => [c.id, c]));
      const { held, gone } = debounce.update(snap.time, byId.keys(), Object.keys(open));
      // The view first, from this look alone: the alerts last read plus the
      // conditions that have held. It must not wait for KV shoal_health and
      // SHOAL_ALERTS, whose leaders may have been on the server just lost:
      // nats-server elects new ones only after its election timeout (4–9 s),
      // and the durable alert state and events below follow then.
      const pending: AlertState[] = [...held].filter((id) => !open[id]).map((id) => ({ ...alertOf(byId.get(id)!, snap.time), published: false }));
      show(snap, conds, [...Object.values(open).filter((a) => !gone.has(a.id) || byId.has(a.id)), ...pending]);
      return { snap, byId, held, gone };
    };

    const persist = async ({ snap, byId, held, gone }: Awaited<ReturnType<typeof look>>) => {
      await raiseShared(snap);
      const stored = await readKnown();
      const merged = mergeKnown(stored, known);
      if (JSON.stringify(merged) !== JSON.stringify(stored)) await kv.put("known", JSON.stringify(merged));
      known = mergeKnown(known, merged); // a look may have learned more meanwhile
      const { map: cur, rev } = await readAlerts();
      open = cur;
      // One transition per alert per tick, all in one compare-and-set write;
      // events for transitions already written are published (again) with
      // ids that make repeats no-ops.
      const want: Record<string, AlertState> = { ...cur };
      let changed = false;
      for (const id of held) {
        if (want[id]) continue;
        want[id] = { ...alertOf(byId.get(id)!, snap.time), published: false };
        changed = true;
      }
      for (const a of Object.values(cur)) {
        if (a.state === "raised" && a.published && gone.has(a.id) && !byId.has(a.id)) {
          want[a.id] = { ...a, state: "resolving" };
          changed = true;
        }
      }
      if (changed && !(await writeAlerts(want, rev))) return; // another instance moved first: look again next tick
      const { map: now, rev: nowRev } = changed ? await readAlerts() : { map: cur, rev };
      const after: Record<string, AlertState> = { ...now };
      let settle = false;
      for (const a of Object.values(now)) {
        if (a.state === "raised" && !a.published) {
          await emit(a, "raised");
          after[a.id] = { ...a, published: true };
          settle = true;
        } else if (a.state === "resolving") {
          await emit(a, "resolved");
          delete after[a.id];
          debounce.forget(a.id);
          settle = true;
        }
      }
      if (settle) await writeAlerts(after, nowRev);
      open = after;
      // repair requests: a server down past the grace period, once per outage
      for (const a of Object.values(after)) {
        if (a.code !== "server-down" || a.state !== "raised" || snap.time - Date.parse(a.since) < cfg.repairGraceMs) continue;
        const key = `repair.${a.id.slice("server-down.".length)}.${Date.parse(a.since)}`;
        const created = await kv.create(key, JSON.stringify({ v: 1, server: a.subject, since: a.since })).then(() => true, () => false);
        if (created) {
          ctx.nc.publish(controlSubject("rebalancer", "repair"), JSON.stringify({ v: 1, server: a.subject, downSince: a.since, reason: "server-down past the grace period" }));
          ctx.log.warn({ server: a.subject }, "repair requested from the rebalancer");
        }
      }
      // the next look shows `open`; this one's view may already be newer than
      // `snap` (looks go on while this runs), so it is not shown again here
      await kv.put("view", JSON.stringify(view)).catch(() => undefined);
    };

    const loop = async () => {
      while (!ctx.signal.aborted) {
        const t0 = Date.now();
        try {
          await tick();
        } catch (e) {
          if (!ctx.signal.aborted) ctx.log.warn({ err: e }, "health check failed; next round retries");
        }
        await sleep(Math.max(0, cfg.intervalMs - (Date.now() - t0)), undefined, { signal: ctx.signal }).catch(() => undefined);
      }
      await persisting;
    };

    const handlers: Record<(typeof ENDPOINTS)[number]["name"], Handler> = {
      health: async () => {
        if (view) return view as unknown as Record<string, unknown>;
        const e = await kv.get("view");
        if (e && e.operation === "PUT") return e.json<Record<string, unknown>>();
        await tick();
        return view as unknown as Record<string, unknown>;
      },
    };

    return {
      endpoints: ENDPOINTS.map((e) => ({ ...e, handler: handlers[e.name] })),
      loops: [{ name: "health", run: loop }],
      close: async () => {
        hbSub.unsubscribe();
        await sys?.close().catch(() => undefined);
      },
    };
  },
});
