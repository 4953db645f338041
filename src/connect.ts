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
  return nc;
}

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
