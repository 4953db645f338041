/**
 * The web console: a browser UI for buckets, objects, uploads, share links
 * and cluster health, served by the gateway process on its own port
 * (`--console-port`, default 9001).
 *
 * - Assets (src/console/ui/ and Preact + htm from node_modules) are read once
 *   at start and served from memory: nothing comes from a CDN, nothing is
 *   built. An import map maps `preact`, `preact/hooks` and `htm` to them.
 * - Login is an S3 access key and secret key, checked against the gateway's
 *   credentials. The server keeps the session (session.ts): the cookie is
 *   HttpOnly, SameSite=Strict, Secure under TLS, and every state-changing
 *   request must carry the session's CSRF token in `X-CSRF-Token` and must
 *   not come from another origin. The secret never goes back to the browser
 *   and is never logged.
 * - The API (api.ts) calls Shoal through the SDK. Errors are JSON
 *   `{error: {code, message, hint}}`: what happened, and what to do.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ShoalError, toShoalError } from "../errors/index.ts";
import { ShoalClient } from "../client/index.ts";
import type { ConsoleConfig, NatsConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { listenHttp, type Listening } from "../runtime/http.ts";
import { LoginThrottle, SessionStore, readCookie, safeEqual, sessionCookie, type Session } from "./session.ts";
import { hintFor } from "./hints.ts";
import { assertBucketName } from "../store/names.ts";
import * as api from "./api.ts";

export const COOKIE = "shoal_console";

export interface ConsoleOptions {
  config: ConsoleConfig;
  client: ShoalClient;
  logger: Logger;
  /** access key → secret key (the gateway's). */
  credentials: ReadonlyMap<string, string>;
  /** The region share links are signed for (the gateway's). */
  region: string;
  /** The S3 endpoint share links point at, when config.publicUrl is unset. */
  s3Url: string;
  /** For tests: the clock of sessions, throttling and signatures. */
  now?: () => number;
  /** For tests: the throttle's waits. */
  throttle?: LoginThrottle;
}

export interface Console extends Listening {
  /** The S3 address share links are signed for. */
  publicUrl: string;
}

// --- assets ----------------------------------------------------------------------------------

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), "ui");
/** URL path → the ES module build a package exports (resolved as Node resolves an import). */
const VENDOR: Record<string, string> = {
  "/vendor/preact.mjs": "preact",
  "/vendor/preact-hooks.mjs": "preact/hooks",
  "/vendor/htm.mjs": "htm",
};
const IMPORT_MAP = JSON.stringify({ imports: { preact: "/vendor/preact.mjs", "preact/hooks": "/vendor/preact-hooks.mjs", htm: "/vendor/htm.mjs" } });

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
}

/** Every asset, read once; and the CSP that allows exactly the inline import map. */
function loadAssets(): { assets: Map<string, Asset>; csp: string } {
  const assets = new Map<string, Asset>();
  for (const [path, specifier] of Object.entries(VENDOR)) {
    assets.set(path, asset(readFileSync(fileURLToPath(import.meta.resolve(specifier))), "text/javascript; charset=utf-8"));
  }
  for (const [name, type] of [["app.js", "text/javascript; charset=utf-8"], ["style.css", "text/css; charset=utf-8"], ["favicon.svg", "image/svg+xml"]] as const) {
    assets.set(`/${name}`, asset(readFileSync(join(UI_DIR, name)), type));
  }
  const html = readFileSync(join(UI_DIR, "index.html"), "utf8").replace("<!--IMPORTMAP-->", `<script type="importmap">${IMPORT_MAP}</script>`);
  assets.set("/", asset(Buffer.from(html), "text/html; charset=utf-8"));
  const mapHash = createHash("sha256").update(IMPORT_MAP).digest("base64");
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${mapHash}'`,
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { assets, csp };
}

// --- the server ------------------------------------------------------------------------------

type Handler = (c: api.ApiContext, ...params: string[]) => Promise<void>;
interface RouteDef {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

const B = "([^/]+)";
const ROUTES: RouteDef[] = [
  { method: "GET", pattern: /^\/api\/buckets$/, handler: api.listBuckets },
  { method: "POST", pattern: /^\/api\/buckets$/, handler: api.createBucket },
  { method: "DELETE", pattern: new RegExp(`^/api/buckets/${B}$`), handler: api.deleteBucket },
  { method: "GET", pattern: new RegExp(`^/api/buckets/${B}/objects$`), handler: api.listObjects },
  { method: "GET", pattern: new RegExp(`^/api/buckets/${B}/object$`), handler: api.objectDetails },
  { method: "PUT", pattern: new RegExp(`^/api/buckets/${B}/object$`), handler: api.putObject },
  { method: "GET", pattern: new RegExp(`^/api/buckets/${B}/download$`), handler: api.download },
  { method: "POST", pattern: new RegExp(`^/api/buckets/${B}/delete$`), handler: api.deleteObjects },
  { method: "POST", pattern: new RegExp(`^/api/buckets/${B}/uploads$`), handler: api.createUpload },
  { method: "PUT", pattern: new RegExp(`^/api/buckets/${B}/uploads/${B}/parts/(\\d+)$`), handler: api.uploadPart },
  { method: "POST", pattern: new RegExp(`^/api/buckets/${B}/uploads/${B}/complete$`), handler: api.completeUpload },
  { method: "DELETE", pattern: new RegExp(`^/api/buckets/${B}/uploads/${B}$`), handler: api.abortUpload },
  { method: "POST", pattern: new RegExp(`^/api/buckets/${B}/share$`), handler: api.share },
  { method: "GET", pattern: /^\/api\/cluster$/, handler: api.cluster },
  { method: "GET", pattern: /^\/api\/events$/, handler: api.events },
];

const SAFE = new Set(["GET", "HEAD"]);

function clientAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? "unknown";
}

/** A state-changing request from another origin (a browser says so in Origin / Sec-Fetch-Site). */
function crossOrigin(req: IncomingMessage): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site") return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

export function sendApiError(res: ServerResponse, e: ShoalError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = e.spec.http;
  const message = e.code === "InternalError" ? e.spec.message : e.message;
  res.setHeader("Cache-Control", "no-store");
  api.sendJson(res, status === 304 ? 400 : status, { error: { code: e.code, message, hint: hintFor(e.code, status), requestId } });
}

export async function startConsole(o: ConsoleOptions): Promise<Console> {
  const log = o.logger.child({ part: "console" });
  const now = o.now ?? Date.now;
  const { assets, csp } = loadAssets();
  const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  const sessions = new SessionStore({ sessionTtlMs: o.config.sessionTtlMs, idleTtlMs: o.config.idleTtlMs }, now);
  const throttle = o.throttle ?? new LoginThrottle(now);
  const tls = o.config.tlsCert && o.config.tlsKey ? { cert: readFileSync(o.config.tlsCert), key: readFileSync(o.config.tlsKey) } : undefined;
  const closing = new AbortController();
  const eventStreams = { open: 0 };
  let publicUrl = o.config.publicUrl ?? o.s3Url;
  let seq = 0;

  // the cookie lives as long as the session can (its absolute end); the idle limit is the server's to enforce
  const setSession = (res: ServerResponse, s: Session | undefined) => {
    res.setHeader("Set-Cookie", sessionCookie(COOKIE, s ? s.id : "", { maxAgeS: s ? (s.created + o.config.sessionTtlMs - now()) / 1000 : 0, secure: tls !== undefined }));
  };
  const sessionJson = (s: Session) => ({ accessKey: s.accessKey, csrf: s.csrf, expires: new Date(sessions.expiresAt(s)).toISOString(), publicUrl, version });

  const login = async (req: IncomingMessage, res: ServerResponse, rlog: Logger) => {
    const who = clientAddress(req);
    const wait = throttle.delayFor(who);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const body = await api.readJson(req);
    const accessKey = typeof body["accessKey"] === "string" ? body["accessKey"] : "";
    const secretKey = typeof body["secretKey"] === "string" ? body["secretKey"] : "";
    const known = o.credentials.get(accessKey);
    // compare even when the key is unknown, so the timing does not tell which part was wrong
    const ok = safeEqual(known ?? "\u0000no such key", secretKey) && known !== undefined && accessKey !== "";
    if (!ok) {
      throttle.failed(who);
      rlog.info({ client: who, delayedMs: wait }, "console: login failed");
      throw new ShoalError("AccessDenied", "The access key or secret key is wrong.");
    }
    throttle.succeeded(who);
    const s = sessions.create(accessKey);
    setSession(res, s);
    rlog.info({ client: who, accessKey }, "console: logged in");
    api.sendJson(res, 200, sessionJson(s));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestId = `C${(++seq).toString(36).toUpperCase()}`;
    const rlog = log.child({ requestId });
    const t0 = performance.now();
    const url = new URL(req.url ?? "/", "http://console");
    const path = url.pathname;
    const method = req.method ?? "GET";
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Referrer-Policy", "no-referrer");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    if (tls) res.setHeader("Strict-Transport-Security", "max-age=31536000");
    // measured server time of API calls (the 100 000-object listing test reads it)
    const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse;
    res.writeHead = ((...a: unknown[]) => {
      if (!res.headersSent && path.startsWith("/api/")) res.setHeader("Server-Timing", `app;dur=${(performance.now() - t0).toFixed(1)}`);
      return writeHead(...a);
    }) as typeof res.writeHead;
    try {
      if (!path.startsWith("/api/")) {
        if (!SAFE.has(method)) throw new ShoalError("InvalidRequest", `${method} is not allowed here`);
        const a = assets.get(path) ?? (path.startsWith("/vendor/") || /\.[a-z0-9]+$/i.test(path) ? undefined : assets.get("/"));
        if (!a) {
          res.statusCode = 404;
          res.setHeader("Content-Type", "text/plain; charset=utf-8");
          res.end("Not found. Open / to use the Shoal console.\n");
          return;
        }
        res.setHeader("Content-Security-Policy", csp);
        res.setHeader("Content-Type", a.type);
        res.setHeader("ETag", a.etag);
        res.setHeader("Cache-Control", "no-cache");
        if (req.headers["if-none-match"] === a.etag) {
          res.statusCode = 304;
          res.end();
          return;
        }
        res.setHeader("Content-Length", a.body.length);
        res.end(method === "HEAD" ? undefined : a.body);
        return;
      }
      res.setHeader("Cache-Control", "no-store");
      const changes = !SAFE.has(method);
      if (changes && crossOrigin(req)) throw new ShoalError("CsrfTokenInvalid", "a request from another site was refused");
      if (path === "/api/login" && method === "POST") return await login(req, res, rlog);
      const session = sessions.touch(readCookie(req.headers.cookie, COOKIE));
      if (path === "/api/session" && method === "GET") {
        if (!session) throw new ShoalError("NotAuthenticated");
        setSession(res, session);
        return api.sendJson(res, 200, sessionJson(session));
      }
      if (!session) throw new ShoalError("NotAuthenticated");
      if (changes) {
        const token = req.headers["x-csrf-token"];
        if (typeof token !== "string" || !safeEqual(token, session.csrf)) throw new ShoalError("CsrfTokenInvalid");
      }
      if (path === "/api/logout" && method === "POST") {
        sessions.delete(session.id);
        setSession(res, undefined);
        rlog.info({ accessKey: session.accessKey }, "console: logged out");
        return api.sendJson(res, 200, { loggedOut: true });
      }
      for (const r of ROUTES) {
        if (r.method !== method) continue;
        const m = r.pattern.exec(path);
        if (!m) continue;
        const params = m.slice(1).map((p) => decodeURIComponent(p));
        // the bucket reaches subject names: refuse a bad one here, as the client's mistake it is
        if (path.startsWith("/api/buckets/")) assertBucketName(params[0]);
        const ctx: api.ApiContext = {
          req,
          res,
          client: o.client,
          accessKey: session.accessKey,
          secretFor: (k) => o.credentials.get(k),
          region: o.region,
          publicUrl,
          query: url.searchParams,
          log: rlog,
          version,
          now: () => new Date(now()),
          closing: closing.signal,
          events: eventStreams,
        };
        await r.handler(ctx, ...params);
        rlog.debug({ method, path, status: res.statusCode, ms: Math.round(performance.now() - t0) }, "console request");
        return;
      }
      throw new ShoalError("InvalidRequest", `no such console API: ${method} ${path}`);
    } catch (e) {
      const err = e instanceof URIError ? new ShoalError("InvalidArgument", "a path segment is not valid percent-encoding") : toShoalError(e);
      if (err.code === "InternalError") rlog.error({ err: e, method, path }, "console request failed");
      else if (err.spec.http >= 500) rlog.warn({ err: e, method, path }, "console request failed (unavailable)");
      else rlog.debug({ code: err.code, method, path }, "console request refused");
      sendApiError(res, err, requestId);
      if (!req.complete) req.resume();
    }
  };

  const opts = { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5000 };
  const server = tls ? createHttpsServer({ ...opts, ...tls }, (req, res) => void handle(req, res)) : createHttpServer(opts, (req, res) => void handle(req, res));
  server.on("clientError", (err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    log.debug({ err }, "console client error");
  });
  const listening = await listenHttp(server, o.config.host, o.config.port);
  const url = tls ? listening.url.replace(/^http:/, "https:") : listening.url;
  publicUrl = publicUrl.replace(/\/+$/, "");
  return {
    ...listening,
    url,
    publicUrl,
    close: async (graceMs?: number) => {
      closing.abort();
      await listening.close(graceMs);
    },
  };
}

/**
 * The console with its own SDK connection, as `shoal dev` and `shoal start
 * --gateway` run it beside the S3 gateway, with the gateway's credentials.
 */
export async function runConsole(o: Omit<ConsoleOptions, "client"> & { nats: NatsConfig }): Promise<Console> {
  const client = await ShoalClient.connect(o.nats);
  try {
    const c = await startConsole({ ...o, client });
    return {
      ...c,
      close: async (graceMs?: number) => {
        await c.close(graceMs);
        await client.close();
      },
    };
  } catch (e) {
    await client.close();
    throw e;
  }
}
