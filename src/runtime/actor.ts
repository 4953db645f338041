/**
 * The actor runtime: `defineActor` declares an actor's contract and wiring;
 * `ActorInstance` runs one instance with its own NATS connection, heartbeat
 * and presence, wrapped handlers, background loops and a drain deadline.
 *
 * The runtime — not each actor — owns reply-on-error, heartbeats, presence,
 * retries (./backoff.ts) and the drain at shutdown.
 */
import { hostname } from "node:os";
import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { keepRunning, withTimeout } from "./backoff.ts";
import { nuid, type Msg, type MsgHdrs, type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { Svcm, type Service, type ServiceMsg } from "@nats-io/services";
import { NATS_SERVICE_ERROR_HEADER, ShoalError, errorToWire, toShoalError } from "../errors/index.ts";
import { KV as KV_NAMES, actorPresenceKey, assertToken, heartbeatSubject } from "../subjects/index.ts";
import { parseJsonObject } from "../subjects/payload.ts";
import { H } from "../subjects/headers.ts";
import { DEFAULTS, type HealthConfig, type NatsConfig, type RuntimeConfig, type StorageConfig } from "../config.ts";
import { connectNats } from "../connect.ts";
import { raiseSharedState, sharedKv } from "./replicas.ts";
import { actorStarted, actorStopped, natsReady, startRequest, type Readiness } from "../metrics/index.ts";
import type { Logger } from "../log.ts";
import type { Heartbeat } from "./presence.ts";

/** What an actor listens to and emits: read at the top of actors/<kind>/index.ts. */
export interface ActorContract {
  /** Request/reply subjects it serves (queue group). */
  serves?: readonly string[];
  /** Streams or subjects it consumes. */
  consumes?: readonly string[];
  /** Subjects or streams it publishes to. */
  publishes?: readonly string[];
  /** KV buckets it reads or writes. */
  kv?: readonly string[];
}

/** Everything an actor's code may use. One per instance. */
export interface ActorContext {
  readonly kind: string;
  readonly id: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly log: Logger;
  /** Aborted when the instance starts to drain. Loops must return soon after. */
  readonly signal: AbortSignal;
  /**
   * Aborted when the drain's deadline passes (or the instance is killed).
   * Transfers in flight listen to this one instead of `signal`, so that a
   * graceful stop — a rolling restart — lets them finish.
   */
  readonly transfers: AbortSignal;
  /**
   * Keeps a graceful stop waiting (up to its deadline) for work that is not
   * a request in flight, such as an open direct-upload session. Call the
   * returned release once, when that work ends.
   */
  hold(): () => void;
  readonly runtime: RuntimeConfig;
  /** The NATS config slice (for actors that must open a system-account connection). */
  readonly nats: NatsConfig;
  /** Storage settings (default replicas) for actors that create buckets. */
  readonly storage: StorageConfig;
  /** Health-monitor settings. */
  readonly health: HealthConfig;
  /** Sets the free-form status carried by the next heartbeats. */
  setStatus(info: Record<string, unknown>): void;
}

/** A request as a handler sees it. */
export interface Request {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** The raw message (for handlers that stream more messages after the reply). */
  readonly msg: Msg;
  /** Per-request child logger carrying the request id. */
  readonly log: Logger;
  readonly requestId: string;
  header(name: string): string | undefined;
  /** The payload as a validated v1 JSON object (`{}` when empty). */
  json(): Record<string, unknown>;
  /** Replies now (for handlers that continue after replying). Later replies are ignored. */
  respond(reply: Reply): void;
  readonly responded: boolean;
}

const RAW = Symbol("shoal.rawReply");
/** What a caller-given request id may be (it is logged and stored with commits). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Bytes with headers, made by rawReply(). */
export interface RawReply {
  readonly [RAW]: true;
  readonly data: Uint8Array | string;
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/** A reply of bytes (or text) with NATS headers. */
export function rawReply(data: Uint8Array | string, headers?: Record<string, string>): RawReply {
  return { [RAW]: true, data, headers };
}

/** What a handler returns: bytes, a string, a JSON-able object (sent as JSON), or rawReply(). */
export type Reply = Uint8Array | string | RawReply | Record<string, unknown> | undefined;

export type Handler = (req: Request, ctx: ActorContext) => Reply | Promise<Reply>;

export interface EndpointSpec {
  /** Endpoint name (a subject token, shown by `nats micro info`). */
  name: string;
  subject: string;
  handler: Handler;
  /** Defaults to the service's queue group. */
  queue?: string;
  metadata?: Record<string, string>;
}

/** Attempts of one call being handled at once (see ActorInstance.shared). */
interface RunningRequest {
  data: Uint8Array;
  headers: string;
  /** The first answer a handler of any attempt returned (not one that answered through req.respond). */
  succeeded: Promise<unknown>;
  succeed: (out: unknown) => void;
  handlers: number;
}

export interface ControlSpec {
  /** Full subject (built with controlSubject()). Not in a queue group: every instance hears it. */
  subject: string;
  handler: Handler;
}

/** What an actor's start() hands back to the runtime. */
export interface ActorWiring {
  endpoints?: EndpointSpec[];
  controls?: ControlSpec[];
  /** Background loops; each runs until ctx.signal aborts. A loop that throws is logged and restarted with backoff. */
  loops?: Array<{ name: string; run: (ctx: ActorContext) => Promise<void> }>;
  /** Called after endpoints and loops have stopped, before the connection closes. */
  close?: () => Promise<void> | void;
}

export interface ActorDefinition {
  readonly kind: string;
  readonly description: string;
  readonly contract: ActorContract;
  /** When set, endpoints are served as this NATS micro service (`nats micro ls`). */
  readonly service?: { name: string; version: string; queue: string };
  start(ctx: ActorContext): ActorWiring | Promise<ActorWiring>;
}

export function defineActor(def: ActorDefinition): ActorDefinition {
  assertToken("actor kind", def.kind);
  return Object.freeze({ ...def, contract: Object.freeze({ ...def.contract }) });
}

export interface InstanceOptions {
  nats: NatsConfig;
  runtime: RuntimeConfig;
  storage?: StorageConfig;
  health?: HealthConfig;
  logger: Logger;
  /** Instance id (default: a fresh nuid). */
  id?: string;
  /** Use this connection instead of opening one (tests). The instance closes it on stop. */
  connection?: NatsConnection;
}

const PRESENCE_HISTORY = 1;

/** One running actor instance. */
export class ActorInstance {
  readonly def: ActorDefinition;
  readonly id: string;
  readonly log: Logger;
  private opts: InstanceOptions;
  private ctx!: ActorContext;
  private nc!: NatsConnection;
  private service: Service | undefined;
  private subs: Array<{ drain(): Promise<void> }> = [];
  private wiring: ActorWiring = {};
  private abort = new AbortController();
  /** Aborted at the drain deadline: transfers (ActorContext.transfers). */
  private hardStop = new AbortController();
  /** Requests in flight plus holds (ActorContext.hold). */
  private inflight = 0;
  /** Service requests being handled, by subject and caller request id (see `shared`). */
  private readonly running = new Map<string, RunningRequest>();
  private idle: (() => void) | undefined;
  private draining = false;
  private loops: Promise<void>[] = [];
  private hbTimer: NodeJS.Timeout | undefined;
  private presence: KV | undefined;
  private status: Record<string, unknown> = {};
  private readonly started = Date.now();
  private stopped: Promise<void> | undefined;
  /** Counted in shoal_actor_instances. */
  private counted = false;

  constructor(def: ActorDefinition, opts: InstanceOptions) {
    // every loop, pump and transfer of the instance listens on its signal
    setMaxListeners(10_000, this.abort.signal, this.hardStop.signal);
    this.def = def;
    this.opts = opts;
    this.id = opts.id ?? nuid.next().toLowerCase();
    assertToken("actor id", this.id);
    this.log = opts.logger.child({ actor: def.kind, id: this.id });
  }

  get kind(): string {
    return this.def.kind;
  }

  get connection(): NatsConnection {
    return this.nc;
  }

  get inflightCount(): number {
    return this.inflight;
  }

  /**
   * What this instance serves, as it registered it: each endpoint's and
   * control's subject (wildcards as registered). Tests derive from it what
   * to send to every subject an actor serves.
   */
  get served(): ReadonlyArray<{ subject: string; kind: "endpoint" | "control"; name: string }> {
    return [
      ...(this.wiring.endpoints ?? []).map((e) => ({ subject: e.subject, kind: "endpoint" as const, name: e.name })),
      ...(this.wiring.controls ?? []).map((c) => ({ subject: c.subject, kind: "control" as const, name: c.subject })),
    ];
  }

  /** For /readyz: started, not stopping, connected, JetStream answering. */
  async readiness(): Promise<Readiness> {
    if (!this.nc || this.stopped) return { ready: false, reason: `${this.def.kind} is not running` };
    return natsReady([this.nc]);
  }

  private uncount(): void {
    if (this.counted) actorStopped(this.def.kind);
    this.counted = false;
  }

  async start(): Promise<void> {
    this.nc = this.opts.connection ?? (await connectNats(this.opts.nats, { name: `shoal-${this.def.kind}-${this.id}`, watch: { onLeave: (server, why) => this.log.warn({ server, why }, "leaving a NATS server that cannot reach JetStream") } }));
    const js = jetstream(this.nc);
    const jsm = await jetstreamManager(this.nc);
    this.ctx = {
      kind: this.def.kind,
      id: this.id,
      nc: this.nc,
      js,
      jsm,
      log: this.log,
      signal: this.abort.signal,
      transfers: this.hardStop.signal,
      hold: () => {
        this.inflight++;
        let held = true;
        return () => {
          if (!held) return;
          held = false;
          this.settle();
        };
      },
      runtime: this.opts.runtime,
      nats: this.opts.nats,
      storage: this.opts.storage ?? DEFAULTS.storage,
      health: this.opts.health ?? DEFAULTS.health,
      setStatus: (info) => {
        this.status = { ...info };
      },
    };
    try {
      // R3 on a cluster: presence must survive a server loss, or every actor looks gone
      this.presence = await sharedKv(js, jsm, KV_NAMES.actors, { history: PRESENCE_HISTORY, ttl: this.opts.runtime.presenceTtlMs });
      await this.beat();
      this.wiring = (await this.def.start(this.ctx)) ?? {};
      await this.serve();
      for (const loop of this.wiring.loops ?? []) this.loops.push(this.runLoop(loop));
      this.loops.push(this.runLoop({ name: "shared-replicas", run: (ctx) => raiseSharedState(ctx) }));
      this.hbTimer = setInterval(() => void this.beat(), this.opts.runtime.heartbeatMs);
      this.hbTimer.unref();
      actorStarted(this.def.kind);
      this.counted = true;
      this.log.info({ contract: this.def.contract }, "actor started");
    } catch (e) {
      await this.stop(0).catch(() => undefined);
      throw e;
    }
  }

  private async serve(): Promise<void> {
    const endpoints = this.wiring.endpoints ?? [];
    if (endpoints.length > 0) {
      if (!this.def.service) throw new ShoalError("InvalidConfig", `actor ${this.def.kind} has endpoints but no service definition`);
      const { name, version, queue } = this.def.service;
      this.service = await new Svcm(this.nc).add({ name, version, description: this.def.description, queue, metadata: { kind: this.def.kind, instance: this.id } });
      for (const ep of endpoints) {
        this.service.addEndpoint(ep.name, {
          subject: ep.subject,
          ...(ep.queue !== undefined ? { queue: ep.queue } : {}),
          ...(ep.metadata ? { metadata: ep.metadata } : {}),
          handler: (err, msg) => {
            if (err) {
              this.log.error({ err }, "service endpoint failed");
              return;
            }
            this.dispatch(ep.handler, msg, true, ep.name, true);
          },
        });
      }
    }
    for (const c of this.wiring.controls ?? []) {
      const sub = this.nc.subscribe(c.subject, { callback: (err, msg) => (err ? this.log.error({ err }, "control subscription failed") : this.dispatch(c.handler, msg, false, c.subject)) });
      this.subs.push(sub);
    }
  }

  /**
   * Runs one handler with the runtime's guarantees: a reply is always sent
   * when the request has a reply subject — the handler's result, or a typed
   * error for a throw or rejection — and nothing escapes to kill the process.
   * Whatever the subject, payload or headers hold: error text is made
   * header-safe (errorToWire), a request counts as answered only once its
   * reply was encoded and handed to the connection, and a last-resort catch
   * logs any failure of this path itself and answers InternalError.
   */
  private dispatch(handler: Handler, msg: Msg, isService: boolean, op: string, shareable = false): void {
    let answered = false;
    const markAnswered = () => {
      answered = true;
    };
    this.dispatchOnce(handler, msg, isService, op, markAnswered, shareable).catch((e: unknown) => {
      this.log.error({ err: e, op }, "request dispatch failed");
      if (!answered) replyInternalError(msg, this.log);
    });
  }

  /**
   * Attempts of one call (the same subject, caller request id, headers and
   * payload: the caller gave up waiting and asked again) that this instance
   * handles at once: each runs its handler, and each answers with the first
   * success of any of them, or its own failure. During a stream election an
   * SDK attempt that timed out left its handler committing; the next attempt
   * committed beside it and answered only when its own commit was through,
   * or its caller had given up on it too. Now the attempt that is waiting
   * gets the answer the moment any attempt's commit lands. (Waiting for the
   * first attempt alone was measured too: a first attempt stuck in a slow
   * read kept every retry waiting 4 s after raw publishes were back.) A
   * handler that answered through `req.respond` (a stream, an offer) shares
   * nothing.
   */
  private shared(msg: Msg, requestId: string | undefined): { key: string; same?: RunningRequest; headers: string } | undefined {
    if (!requestId) return undefined;
    const key = `${msg.subject}\n${requestId}`;
    let headers = "";
    try {
      for (const [k, vs] of msg.headers ?? []) headers += `${k}:${vs.join(",")}\n`;
    } catch {
      return undefined;
    }
    const r = this.running.get(key);
    const same = r && r.headers === headers && Buffer.compare(r.data, msg.data) === 0 ? r : undefined;
    return { key, headers, ...(same ? { same } : {}) };
  }

  private async dispatchOnce(handler: Handler, msg: Msg, isService: boolean, op: string, markAnswered: () => void, shareable = false): Promise<void> {
    const done = startRequest(this.def.kind, op);
    // The caller's id (the same on each retry of one call) when it is sane; else a fresh one.
    let given: string | undefined;
    try {
      given = msg.headers?.get(H.requestId);
    } catch {
      given = undefined;
    }
    const requestId = given && REQUEST_ID.test(given) ? given : nuid.next();
    const log = this.log.child({ req: requestId });
    let responded = false;
    const send = (reply: Reply) => {
      if (responded || !msg.reply) return;
      // encode first: a reply that cannot be encoded leaves the request unanswered, for sendError
      const { data, headers } = encodeReply(reply);
      msg.respond(data, headers ? { headers } : undefined);
      responded = true;
      markAnswered();
    };
    const sendError = (e: unknown) => {
      const err = toShoalError(e);
      done(err.code);
      const subject = msg.subject.slice(0, 256);
      if (err.code === "InternalError") log.error({ err: e, subject }, "handler failed");
      else if (err.spec.http >= 500) log.warn({ err: e, code: err.code, subject }, "request failed");
      else log.info({ code: err.code, subject, msg: err.message.slice(0, 512) }, "request refused");
      if (responded || !msg.reply) return;
      const wire = errorToWire(err);
      const h = natsHeaders();
      for (const [k, v] of Object.entries(wire.headers)) h.set(k, v);
      if (isService) (msg as ServiceMsg).respondError(err.spec.nats, wire.headers[NATS_SERVICE_ERROR_HEADER]!, wire.body, { headers: h });
      else msg.respond(wire.body, { headers: h });
      responded = true;
      markAnswered();
    };
    if (this.draining) {
      sendError(new ShoalError("ShuttingDown"));
      return;
    }
    this.inflight++;
    const req: Request = {
      subject: msg.subject,
      data: msg.data,
      headers: msg.headers,
      msg,
      log,
      requestId,
      header: (name) => msg.headers?.get(name) || undefined,
      json: () => parseJsonObject(msg.data),
      respond: send,
      get responded() {
        return responded;
      },
    };
    const share = shareable && given === requestId ? this.shared(msg, requestId) : undefined;
    try {
      let entry: RunningRequest | undefined;
      if (share) {
        entry = share.same;
        if (!entry) {
          let resolve!: (v: unknown) => void;
          const succeeded = new Promise<unknown>((r) => (resolve = r));
          entry = { data: msg.data, headers: share.headers, succeeded, succeed: resolve, handlers: 0 };
          this.running.set(share.key, entry);
        }
        entry.handlers++;
      }
      const own = (async () => handler(req, this.ctx))();
      let first: { out: unknown } | { error: unknown } | { shared: unknown };
      try {
        first = await Promise.race([
          own.then(
            (out) => ({ out }),
            (error: unknown) => ({ error }),
          ),
          ...(entry ? [entry.succeeded.then((shared) => ({ shared }))] : []),
        ]);
        if ("out" in first && !responded) entry?.succeed(first.out);
        if ("shared" in first) {
          // another attempt of this call succeeded first: its answer is ours;
          // our own handler finishes (it may be committing) before we settle
          send(first.shared as Reply);
          done("ok");
          await own.catch((e: unknown) => log.debug({ err: e }, "an attempt answered by another attempt of its call failed"));
          return;
        }
      } finally {
        if (entry && --entry.handlers === 0 && this.running.get(share!.key) === entry) this.running.delete(share!.key);
      }
      if ("error" in first) throw first.error;
      if (!responded) send(first.out as Reply);
      done("ok");
    } catch (e) {
      if (responded) {
        log.error({ err: e }, "handler failed after replying");
        done(toShoalError(e).code);
      } else sendError(e);
    } finally {
      this.settle();
    }
  }

  private runLoop(loop: { name: string; run: (ctx: ActorContext) => Promise<void> }): Promise<void> {
    return keepRunning(() => loop.run(this.ctx), {
      signal: this.abort.signal,
      backoff: { baseMs: 250, maxMs: 30_000, jitter: 0 },
      healthyMs: 60_000,
      restMs: 100,
      failed: (e, failures, retryInMs) => this.log.error({ err: e, loop: loop.name, failures, retryInMs }, "actor loop failed; restarting"),
    });
  }

  private heartbeat(): Heartbeat {
    return {
      v: 1,
      kind: this.def.kind,
      id: this.id,
      host: hostname(),
      pid: process.pid,
      started: this.started,
      now: Date.now(),
      intervalMs: this.opts.runtime.heartbeatMs,
      status: this.draining ? "draining" : "running",
      inflight: this.inflight,
      ...(Object.keys(this.status).length ? { info: this.status } : {}),
    };
  }

  private async beat(): Promise<void> {
    if (!this.nc || this.nc.isClosed()) return;
    const body = JSON.stringify(this.heartbeat());
    try {
      this.nc.publish(heartbeatSubject(this.def.kind, this.id), body);
      await this.presence?.put(actorPresenceKey(this.def.kind, this.id), body);
    } catch (e) {
      // A missed beat is not fatal: presence catches up at the next one.
      this.log.warn({ err: e }, "heartbeat failed");
    }
  }

  /**
   * Graceful stop: stop taking requests, let in-flight ones finish (up to the
   * deadline), stop loops, remove presence, close the connection. Idempotent.
   */
  stop(deadlineMs = this.opts.runtime.drainTimeoutMs): Promise<void> {
    this.stopped ??= this.doStop(deadlineMs);
    return this.stopped;
  }

  /**
   * A crash, for fault injection: the connection closes at once — no drain,
   * no replies to requests in flight, no presence removal, no acks — as if
   * the process died. Loops see their signal abort.
   */
  async kill(): Promise<void> {
    this.stopped ??= (async () => {
      this.draining = true;
      this.uncount();
      if (this.hbTimer) clearInterval(this.hbTimer);
      this.abort.abort(new ShoalError("ShuttingDown"));
      this.hardStop.abort(new ShoalError("ShuttingDown"));
      if (this.nc && !this.nc.isClosed()) await this.nc.close().catch(() => undefined);
      this.log.info("actor killed");
    })();
    return this.stopped;
  }

  private settle(): void {
    this.inflight--;
    if (this.inflight === 0) this.idle?.();
  }

  private whenIdle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise<void>((r) => (this.idle = r));
  }

  private async doStop(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    const left = () => Math.max(0, until - Date.now());
    this.draining = true;
    this.uncount();
    this.abort.abort(new ShoalError("ShuttingDown"));
    if (this.hbTimer) clearInterval(this.hbTimer);
    // No new requests: the queue group hands them to other instances.
    await withTimeout(Promise.allSettled([this.service?.stop(), ...this.subs.map((s) => s.drain())]), left());
    // Requests and transfers in flight finish, until the deadline; then the
    // transfers still open are aborted (they clean up after themselves:
    // a short grace for that, bounded too).
    if (this.inflight > 0) await withTimeout(this.whenIdle(), left());
    if (this.inflight > 0) this.log.warn({ inflight: this.inflight }, "drain deadline passed with requests or transfers in flight");
    this.hardStop.abort(new ShoalError("ShuttingDown"));
    if (this.inflight > 0) await withTimeout(this.whenIdle(), Math.max(left(), 2000));
    await withTimeout(Promise.allSettled(this.loops), left());
    try {
      await withTimeout(Promise.resolve(this.wiring.close?.()), left());
    } catch (e) {
      this.log.error({ err: e }, "actor close failed");
    }
    if (this.presence && this.nc && !this.nc.isClosed()) {
      await withTimeout(this.presence.delete(actorPresenceKey(this.def.kind, this.id)).catch(() => undefined), Math.min(left() + 500, 2000));
    }
    if (this.nc && !this.nc.isClosed()) {
      await withTimeout(this.nc.drain().catch(() => undefined), Math.max(left(), 500));
      if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    }
    this.log.info("actor stopped");
  }
}

/** Answers `msg` (when it has a reply subject) with the typed error for `e`. */
export function respondError(msg: Msg, e: unknown): void {
  if (!msg.reply) return;
  const err = toShoalError(e);
  const wire = errorToWire(err);
  const h = natsHeaders();
  for (const [k, v] of Object.entries(wire.headers)) h.set(k, v);
  msg.respond(wire.body, { headers: h });
}

/** The reply of last resort: a constant InternalError, built from nothing the request holds. */
const INTERNAL = errorToWire(new ShoalError("InternalError"));

function replyInternalError(msg: Msg, log: Logger): void {
  try {
    if (!msg.reply) return;
    const h = natsHeaders();
    for (const [k, v] of Object.entries(INTERNAL.headers)) h.set(k, v);
    msg.respond(INTERNAL.body, { headers: h });
  } catch (e) {
    log.error({ err: e }, "could not send even the InternalError reply");
  }
}

function encodeReply(reply: Reply): { data: Uint8Array | string; headers?: MsgHdrs } {
  if (reply === undefined) return { data: "" };
  if (typeof reply === "string" || reply instanceof Uint8Array) return { data: reply };
  if (RAW in reply) {
    const r = reply as RawReply;
    if (!r.headers) return { data: r.data };
    const h = natsHeaders();
    for (const [k, v] of Object.entries(r.headers)) h.set(k, v);
    return { data: r.data, headers: h };
  }
  return { data: JSON.stringify(reply) };
}
