/**
 * One way to open a NATS connection from a config slice, used by the actor
 * runtime, the SDK and the CLI.
 */
import { readFileSync } from "node:fs";
import { AuthorizationError, UserAuthenticationExpiredError, connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import type { NatsConfig } from "./config.ts";
import { ShoalError } from "./errors/index.ts";
import { assertServerVersion } from "./engine/version.ts";

export interface ConnectOverrides {
  /** Connection name shown by `nats server report connections`. */
  name?: string;
  /** Use the system-account user (for $SYS requests). */
  system?: boolean;
  /** Extra client options (timeouts, reconnect policy). */
  options?: Partial<ConnectionOptions>;
  /**
   * Leave a server that cannot reach JetStream (watchJetStream); on by
   * default. `onLeave` hears each switch (for the caller's log).
   */
  watch?: false | Partial<WatchOptions>;
}

export function connectionOptions(cfg: NatsConfig, o: ConnectOverrides = {}): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: [...cfg.servers],
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 10_000,
    // Without this every request builds an Error up front to keep the
    // caller's stack for a timeout that rarely comes: measured at ~0.13 ms of
    // CPU per small put in the storage actor (a fifth of its work). Errors
    // keep their own messages and codes.
    noAsyncTraces: true,
    ...(o.name ? { name: o.name } : {}),
  };
  if (o.system) {
    if (!cfg.sysUser) throw new ShoalError("InvalidConfig", "a system-account user is needed for this (SHOAL_NATS_SYS_USER / SHOAL_NATS_SYS_PASS)");
    opts.user = cfg.sysUser;
    if (cfg.sysPass !== undefined) opts.pass = cfg.sysPass;
  } else if (cfg.creds) {
    let creds: Uint8Array;
    try {
      creds = readFileSync(cfg.creds);
    } catch (e) {
      throw new ShoalError("InvalidConfig", `cannot read NATS credentials file ${cfg.creds}`, { cause: e });
    }
    opts.authenticator = credsAuthenticator(creds);
  } else if (cfg.user) {
    opts.user = cfg.user;
    if (cfg.pass !== undefined) opts.pass = cfg.pass;
  }
  return { ...opts, ...o.options };
}

/**
 * Connects, turning "cannot reach any server" into a clear ServiceUnavailable,
 * and refuses a server older than the oldest Shoal runs on (the version in
 * the server's INFO; NatsServerTooOld names both versions).
 */
export async function connectNats(cfg: NatsConfig, o: ConnectOverrides = {}): Promise<NatsConnection> {
  const nc = await connectRetrying(cfg, o);
  try {
    assertServerVersion(nc.info?.version, nc.getServer());
  } catch (e) {
    await nc.close().catch(() => undefined);
    throw e;
  }
  if (o.watch !== false && cfg.servers.length > 1) watchJetStream(nc, { ...(o.system ? { probe: serverJszProbe } : {}), ...(o.watch ?? {}) });
  return nc;
}

export interface WatchOptions {
  /** Between two looks. */
  intervalMs: number;
  /** One look's wait for an answer. */
  timeoutMs: number;
  /** "JetStream temporarily unavailable" answers in a row that make the client leave. */
  unavailable: number;
  /** Looks in a row without an answer that make it leave (only once JetStream has answered through this connection). */
  silent: number;
  onLeave?: (server: string, why: string) => void;
  /**
   * One look: "ok", "unavailable" (JetStream is not reachable through this
   * server), or "other" (an answer that says neither); throws when nothing
   * answers. The default asks `$JS.API.INFO`; a system-account connection
   * (no JetStream of its own) asks its server's own JSZ (serverJszProbe).
   */
  probe?: (nc: NatsConnection, timeoutMs: number) => Promise<"ok" | "unavailable" | "other">;
}

/** The default look: the account's JetStream info; 10008 is "temporarily unavailable" (no meta leader reachable). */
async function jsInfoProbe(nc: NatsConnection, timeoutMs: number): Promise<"ok" | "unavailable" | "other"> {
  const m = await nc.request("$JS.API.INFO", "", { timeout: timeoutMs });
  let code: number | undefined;
  try {
    code = (JSON.parse(m.string()) as { error?: { err_code?: number } }).error?.err_code;
  } catch {
    return "other";
  }
  return code === undefined ? "ok" : code === JS_TEMPORARILY_UNAVAILABLE ? "unavailable" : "other";
}

/**
 * The look of a system-account connection: its server's own JSZ. A
 * clustered server that knows no meta leader is cut off from the quorum
 * (or the cluster has none) — what 10008 says to an account.
 */
export async function serverJszProbe(nc: NatsConnection, timeoutMs: number): Promise<"ok" | "unavailable" | "other"> {
  const id = nc.info?.server_id;
  if (!id) return "other";
  const m = await nc.request(`$SYS.REQ.SERVER.${id}.JSZ`, "", { timeout: timeoutMs });
  let meta: { leader?: string; cluster_size?: number } | undefined;
  try {
    meta = (JSON.parse(m.string()) as { data?: { meta_cluster?: { leader?: string; cluster_size?: number } } }).data?.meta_cluster;
  } catch {
    return "other";
  }
  if (!meta || (meta.cluster_size ?? 0) <= 1) return "other";
  return meta.leader ? "ok" : "unavailable";
}

/**
 * An election after a server is killed also answers 10008 for its 4–9 s
 * (nats-server's election timeout), on every server; five looks (~10 s)
 * outlast it, so only a server that stays cut off is left — measured: no
 * answer for ~4 s after the cut, then 10008 — about 14 s after the cut.
 */
export const WATCH_DEFAULTS: WatchOptions = Object.freeze({ intervalMs: 2000, timeoutMs: 2000, unavailable: 5, silent: 10 });

/**
 * A NATS client stays on a server for as long as that server keeps the
 * connection up — also when the server is cut off from its peers, and then
 * every JetStream request through it fails (measured: no answer for ~4 s,
 * then "JetStream system temporarily unavailable", 503/10008, while the two
 * servers on the other side serve on). This looks every `intervalMs`
 * (`$JS.API.INFO`, one small request) and, when the server says JetStream is
 * unavailable `unavailable` times in a row — or stops answering `silent`
 * times in a row after it had answered — makes the client reconnect, which
 * takes the next server of its list. Requests in flight are answered on the
 * new connection when their responders answer (the client resubscribes its
 * inbox), or time out and are retried like any lost answer. After a switch the streak needed doubles (up to 32×) until a look
 * succeeds: when the whole cluster has lost its quorum, every server says
 * the same, and the client must not hop for ever. Only for clients given
 * more than one server; a user without permission for the JetStream API
 * never gets an answer and is never moved.
 */
export function watchJetStream(nc: NatsConnection, o: Partial<WatchOptions> = {}): void {
  const w = { ...WATCH_DEFAULTS, ...o };
  const probe = o.probe ?? jsInfoProbe;
  let answered = false;
  let unavailable = 0;
  let silent = 0;
  let factor = 1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  void nc.closed().then(() => {
    closed = true;
    clearTimeout(timer);
  });
  // The client's server list can name a server twice (as given, and as the
  // cluster advertises it), so a reconnect may land where it left: then it
  // goes on to the next one, up to a few times.
  let leaving: { server: string; hops: number } | undefined;
  void (async () => {
    for await (const st of nc.status()) {
      if (st.type !== "reconnect" || !leaving) continue;
      if (nc.getServer() === leaving.server && leaving.hops < 4) {
        leaving.hops++;
        nc.reconnect().catch(() => undefined);
      } else leaving = undefined;
    }
  })().catch(() => undefined);
  const leave = (why: string) => {
    const server = nc.getServer();
    unavailable = 0;
    silent = 0;
    factor = Math.min(32, factor * 2);
    w.onLeave?.(server, why);
    leaving = { server, hops: 0 };
    nc.reconnect().catch(() => undefined);
  };
  const look = async () => {
    if (closed || nc.isClosed() || nc.isDraining()) return;
    try {
      const seen = await probe(nc, w.timeoutMs);
      silent = 0;
      if (seen === "unavailable") {
        if (++unavailable >= w.unavailable * factor) leave("JetStream is unavailable through it (no meta leader)");
      } else {
        unavailable = 0;
        if (seen === "ok") {
          answered = true;
          factor = 1;
        }
      }
    } catch {
      // no answer (a timeout; no responders while JetStream has no API here)
      if (answered && ++silent >= w.silent * factor) leave(`JetStream did not answer ${silent} looks in a row`);
    }
  };
  const tick = () => {
    timer = setTimeout(() => {
      void look().finally(() => {
        if (!closed) tick();
      });
    }, w.intervalMs);
    timer.unref?.();
  };
  tick();
}

/** JSClusterNotAvailErr: "JetStream system temporarily unavailable" (no meta leader reachable from this server). */
const JS_TEMPORARILY_UNAVAILABLE = 10008;

async function connectRetrying(cfg: NatsConfig, o: ConnectOverrides): Promise<NatsConnection> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectOnce(cfg, o);
    } catch (e) {
      // The server gave up waiting for our CONNECT (a starved process): not a credentials problem.
      if (!(e instanceof ShoalError && e.detail?.["authTimeout"] === true) || attempt >= 3) throw e;
    }
  }
}

async function connectOnce(cfg: NatsConfig, o: ConnectOverrides): Promise<NatsConnection> {
  try {
    return await connect(connectionOptions(cfg, o));
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = e instanceof Error ? e.message : String(e);
    // The client reports refused credentials, expired accounts and the
    // server's "authentication timeout" (it gave up waiting for our CONNECT:
    // a starved process, not a credentials problem) all as
    // AuthorizationError; only the server's own text tells the last apart,
    // and the client itself tells them apart the same way (AuthorizationError.parse).
    if (e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError) {
      if (!/authentication timeout/i.test(why)) throw new ShoalError("AccessDenied", `NATS refused the credentials (${why})`, { cause: e });
      throw new ShoalError("ServiceUnavailable", `NATS at ${cfg.servers.join(",")} timed out our authentication: ${why}`, { cause: e, detail: { authTimeout: true } });
    }
    throw new ShoalError("ServiceUnavailable", `cannot connect to NATS at ${cfg.servers.join(",")}: ${why}${code ? ` (${code})` : ""}`, { cause: e });
  }
}
