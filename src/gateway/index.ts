/**
 * The S3 gateway: an S3-compatible HTTP API in front of the storage actors.
 * It holds no state of its own — every call goes through the SDK to the
 * storage service (multipart state included), so any number of gateways can
 * run behind a load balancer and an upload begun on one finishes on another.
 *
 * Per request: route (route.ts) → authenticate (auth.ts, SigV4 header or
 * presigned; sigv2.ts for legacy clients) → CORS headers when the request
 * has an Origin the bucket allows → run the operation (ops.ts: the table of
 * operations; ops/ holds them per resource — objects, buckets, multipart,
 * bucket sub-resources — and what they share, ops/common.ts) → answer. A
 * CORS preflight (OPTIONS) is answered from the bucket's rules without
 * auth. Bodies stream both ways with backpressure (HTTP ⇄ NATS flow
 * control); request bodies are checked (body.ts) before the upload is
 * committed. Errors are S3 XML with the code and status from
 * src/errors/table.ts and a RequestId; internal details go to the log only.
 * Per-bucket settings (CORS, lifecycle, owner) live in KV
 * shoal_bucket_settings; the gateway only caches them (2 s).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import { listenHttp, type Listening } from "../runtime/http.ts";
import { ERRORS, ShoalError, toShoalError } from "../errors/index.ts";
import type { GatewayConfig, NatsConfig } from "../config.ts";
import { ShoalClient } from "../client/index.ts";
import type { Logger } from "../log.ts";
import { verifyRequest, type Verified } from "./auth.ts";
import { bucketFromHost, route, type Route } from "./route.ts";
import { xml } from "./xml.ts";
import { applyCors, runOperation, type OpContext } from "./ops.ts";
import { BucketSettings } from "../store/bucketsettings.ts";
import { OPS_PATHS, countBytes, natsReady, serveOps, startRequest, type Readiness } from "../metrics/index.ts";

/** An unsigned request: no Authorization header and no presigned query (SigV4 or SigV2). */
function unsigned(req: IncomingMessage, rawQuery: string): boolean {
  return req.headers.authorization === undefined && !/(^|&)(X-Amz-Signature|X-Amz-Credential|AWSAccessKeyId|Signature)=/i.test(rawQuery);
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
  /** How long CompleteMultipartUpload may take before the gateway commits to a 200 (default 1 s; tests set 0). */
  completeHoldMs?: number;
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
  // a GET/HEAD that met a delete marker says so, as S3 does
  if (e.detail?.["deleteMarker"] === true) res.setHeader("x-amz-delete-marker", "true");
  if (typeof e.detail?.["versionId"] === "string" && (e.code === "NoSuchKey" || e.code === "MethodNotAllowed")) res.setHeader("x-amz-version-id", e.detail["versionId"]);
  if (e.code === "MethodNotAllowed") res.setHeader("Allow", "DELETE");
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
  const settings = new BucketSettings(o.client.nc);
  const server = createServer({ maxHeaderSize: 64 * 1024, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res);
  });
  // S3 ignores an Expect it does not know (Node would answer 417): serve the request as usual
  server.on("checkExpectation", (req, res) => {
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
      // CORS headers go on errors too (a browser app could not read them otherwise)
      if (r.bucket !== undefined && r.op !== "Preflight" && req.headers.origin !== undefined) await applyCors({ req, res, settings }, r.bucket);
      // a preflight carries no credentials (browsers never sign it)
      const verified: Verified =
        r.op === "Preflight"
          ? { accessKey: "", signingKey: Buffer.alloc(0), seedSignature: "", scope: "", amzDate: "", contentSha256: "UNSIGNED-PAYLOAD", presigned: false }
          : verifyRequest({ method: req.method ?? "GET", rawPath, rawQuery, headers: req.headers, ...(hostBucket !== undefined ? { hostBucket } : {}) }, {
              region: o.config.region,
              secretFor: (k) => o.credentials.get(k),
              now: o.now?.() ?? new Date(),
            });
      const ctx: OpContext = { req, res, route: r, verified, client: o.client, config: o.config, requestId, log, settings, ...(o.completeHoldMs !== undefined ? { completeHoldMs: o.completeHoldMs } : {}) };
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
  // CONNECT is not S3: answered, not dropped unanswered (node drops it when
  // nobody listens). An Upgrade header on other methods is ignored by node
  // when nobody listens: such requests are served as plain HTTP.
  const refuseRaw = (socket: import("node:stream").Duplex) => {
    const body = xml("Error", [
      ["Code", ERRORS.NotImplemented.s3],
      ["Message", "The CONNECT method is not implemented."],
    ], "");
    if (socket.writable) socket.end(`HTTP/1.1 501 Not Implemented\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    else socket.destroy();
  };
  server.on("connect", (_req, socket) => refuseRaw(socket));
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
