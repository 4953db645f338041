/**
 * The S3 gateway: an S3-compatible HTTP API in front of the storage actors.
 * It holds no state of its own — every call goes through the SDK to the
 * storage service (multipart state included), so any number of gateways can
 * run behind a load balancer and an upload begun on one finishes on another.
 *
 * Per request: route (route.ts) → authenticate (auth.ts, SigV4 header or
 * presigned) → run the operation (ops.ts) → answer. Bodies stream both ways
 * with backpressure (HTTP ⇄ NATS flow control); request bodies are checked
 * (body.ts) before the upload is committed. Errors are S3 XML with the code
 * and status from src/errors/table.ts and a RequestId; internal details go
 * to the log only.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { listenHttp, type Listening } from "../runtime/http.ts";
import { ShoalError, toShoalError } from "../errors/index.ts";
import type { GatewayConfig, NatsConfig } from "../config.ts";
import { ShoalClient } from "../client/index.ts";
import type { Logger } from "../log.ts";
import { verifyRequest, type Verified } from "./auth.ts";
import { bucketFromHost, route, type Route } from "./route.ts";
import { xml } from "./xml.ts";
import { runOperation, type OpContext } from "./ops.ts";
import { OPS_PATHS, countBytes, natsReady, serveOps, startRequest, type Readiness } from "../metrics/index.ts";

/** An unsigned request: no Authorization header and no presigned query. */
function unsigned(req: IncomingMessage, rawQuery: string): boolean {
  return req.headers.authorization === undefined && !/(^|&)X-Amz-(Signature|Credential)=/i.test(rawQuery);
}

/** S3 allows 8 KiB of request headers (and 2 KiB of user metadata). */
export const MAX_HEADER_BYTES = 16 * 1024;

export interface GatewayOptions {
  config: GatewayConfig;
  client: ShoalClient;
  logger: Logger;
  /** access key → secret key */
  credentials: ReadonlyMap<string, string>;
  /** For tests: the clock used to check signatures. */
  now?: () => Date;
  /** What /readyz checks besides the gateway's own connection (actors in the same process). */
  alsoReady?: () => Promise<Readiness>;
}

export interface Gateway extends Listening {
  /** What /readyz answers. */
  ready(): Promise<Readiness>;
  /** Stops taking connections; requests in flight may finish for `graceMs` (default: none). */
  close(graceMs?: number): Promise<void>;
}

function headerBytes(req: IncomingMessage): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i++) n += req.rawHeaders[i]!.length + 2;
  return n;
}

export function sendError(res: ServerResponse, req: IncomingMessage, requestId: string, e: ShoalError, resource: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = e.spec.http;
  res.statusCode = status;
  res.setHeader("x-amz-request-id", requestId);
  if (req.method === "HEAD" || status === 304) {
    res.end();
    return;
  }
  const body = xml("Error", [
    ["Code", e.spec.s3],
    ["Message", e.message],
    ["Resource", resource],
    ["RequestId", requestId],
  ], "");
  res.setHeader("Content-Type", "application/xml");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const log = o.logger.child({ part: "gateway" });
  const ready = async (): Promise<Readiness> => {
    const own = await natsReady([o.client.nc]);
    return own.ready && o.alsoReady ? o.alsoReady() : own;
  };
  const server = createServer({ maxHeaderSize: 64 * 1024, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res);
  });
  // Request ids: this gateway's random prefix and a counter — unique per
  // request and across gateways, without a CSPRNG read per request (~60 µs here)
  const idPrefix = randomBytes(4).toString("hex").toUpperCase();
  let idSeq = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    idSeq = (idSeq + 1) >>> 0;
    const requestId = idPrefix + idSeq.toString(16).toUpperCase().padStart(8, "0");
    res.setHeader("x-amz-request-id", requestId);
    res.setHeader("Server", "Shoal");
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const rawPath = q < 0 ? target : target.slice(0, q);
    const rawQuery = q < 0 ? "" : target.slice(q + 1);
    const hostBucket = bucketFromHost(req.headers.host, o.config.domains);
    // /metrics, /healthz and /readyz answer unsigned requests (an unsigned S3
    // request would be refused anyway); signed ones still reach buckets of those names
    if (OPS_PATHS.has(rawPath) && hostBucket === undefined && unsigned(req, rawQuery)) {
      await serveOps(rawPath, req, res, ready).catch((e: unknown) => {
        log.error({ err: e }, "ops endpoint failed");
        if (!res.headersSent) res.statusCode = 500;
        res.end();
      });
      return;
    }
    let r: Route | undefined;
    const started = performance.now();
    const done = startRequest("gateway", "unrouted");
    res.once("close", () => {
      const inLen = Number(req.headers["content-length"]);
      if (Number.isSafeInteger(inLen)) countBytes("gateway", "in", inLen);
      const outLen = Number(res.getHeader("content-length"));
      if (Number.isSafeInteger(outLen) && req.method !== "HEAD" && res.writableFinished) countBytes("gateway", "out", outLen);
      done(res.writableFinished ? "ok" : "Aborted", r?.op ?? "unrouted");
    });
    try {
      if (headerBytes(req) > MAX_HEADER_BYTES) throw new ShoalError("RequestHeaderTooLarge", `request headers exceed ${MAX_HEADER_BYTES} bytes`);
      r = route(req.method ?? "GET", rawPath, rawQuery, hostBucket, req.headers);
      const verified: Verified = verifyRequest({ method: req.method ?? "GET", rawPath, rawQuery, headers: req.headers }, {
        region: o.config.region,
        secretFor: (k) => o.credentials.get(k),
        now: o.now?.() ?? new Date(),
      });
      const ctx: OpContext = { req, res, route: r, verified, client: o.client, config: o.config, requestId, log };
      await runOperation(ctx);
      log.debug({ op: r.op, bucket: r.bucket, status: res.statusCode, ms: Math.round(performance.now() - started), requestId }, "s3 request");
    } catch (e) {
      const err = toShoalError(e);
      done(err.code, r?.op ?? "unrouted");
      if (err.code === "InternalError") log.error({ err: e, op: r?.op, requestId }, "s3 request failed");
      else log.debug({ code: err.code, op: r?.op, requestId }, "s3 request refused");
      sendError(res, req, requestId, err, rawPath);
      // an unread request body would otherwise stall the connection
      if (!req.complete) req.resume();
    }
  };
  server.on("clientError", (err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    log.debug({ err }, "s3 client error");
  });
  return { ...(await listenHttp(server, o.config.host, o.config.port)), ready };
}

/**
 * A gateway with its own SDK connection, as `shoal dev` and `shoal start
 * --gateway` run it. Credentials: the config's pair, else `fallback`.
 */
export async function runGateway(o: { config: GatewayConfig; nats: NatsConfig; logger: Logger; fallback?: { accessKey: string; secretKey: string }; alsoReady?: () => Promise<Readiness> }): Promise<Gateway & { accessKey: string; secretKey: string }> {
  const accessKey = o.config.accessKey ?? o.fallback?.accessKey;
  const secretKey = o.config.secretKey ?? o.fallback?.secretKey;
  if (!accessKey || !secretKey) throw new ShoalError("InvalidConfig", "the S3 gateway needs credentials: set SHOAL_ACCESS_KEY and SHOAL_SECRET_KEY (or gateway.accessKey / gateway.secretKey)");
  const client = await ShoalClient.connect(o.nats);
  try {
    const gw = await startGateway({ config: o.config, client, logger: o.logger, credentials: new Map([[accessKey, secretKey]]), ...(o.alsoReady ? { alsoReady: o.alsoReady } : {}) });
    return {
      ...gw,
      accessKey,
      secretKey,
      close: async (graceMs?: number) => {
        await gw.close(graceMs);
        await client.close();
      },
    };
  } catch (e) {
    await client.close();
    throw e;
  }
}
