/**
 * Fuzz test of every subject the actors serve (issue 14, defect 1): random
 * requests — JSON with control characters in keys and values, wrong types,
 * invalid UTF-8, oversized bodies, random headers — each get a typed error
 * or a result, never silence and never an InternalError, and every actor
 * still serves afterwards. The subjects come from what the actors registered
 * (ActorInstance.served), not from a list written here.
 *
 * Bounded: SHOAL_FUZZ_RUNS requests (default 400) within 40 s. A failure
 * prints fast-check's seed and the shrunk request; SHOAL_SEED replays it.
 */
import test from "ava";
import fc from "fast-check";
import { connect as tcpConnect } from "node:net";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { errorFromWire, isErrorCode } from "../../src/errors/index.ts";
import { storage } from "../../actors/storage/index.ts";
import { replicator } from "../../actors/replicator/index.ts";
import { healthMonitor } from "../../actors/health-monitor/index.ts";
import { H } from "../../src/subjects/headers.ts";
import { runActor } from "../helpers/actors.ts";
import { startServer, connectTo, TEST_AUTH } from "../helpers/nats.ts";
import { checkProperty } from "../helpers/prop.ts";
import { ShoalClient } from "../../src/client/index.ts";
import type { ActorInstance } from "../../src/runtime/index.ts";

const RUNS = Number(process.env["SHOAL_FUZZ_RUNS"] ?? 400);
const SEED = process.env["SHOAL_SEED"] === undefined ? undefined : Number(process.env["SHOAL_SEED"]);
const BUCKET = "fuzz";

/** Strings a hostile or confused client sends: control characters, CR/LF, lone surrogates, long runs. */
const nasty = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom("", "\r\n", "a\nb", "\u0000", "\ud800", "x".repeat(2000), "../../etc", "*", ">", "fuzz", "k", "a_b", "A.B", "-1", "1e999", "__proto__", "constructor"),
);
const FIELD_NAMES = ["v", "key", "bucket", "prefix", "delimiter", "maxKeys", "startAfter", "continuationToken", "range", "ifMatch", "ifNoneMatch", "ifModifiedSince", "ifUnmodifiedSince", "stream", "window", "direct", "keys", "sourceBucket", "sourceKey", "metadataDirective", "contentType", "metadata", "uploadId", "parts", "partNumberMarker", "maxParts", "keyMarker", "uploadIdMarker", "maxUploads", "replicas", "force", "id", "size", "md5", "sha256"];
const fieldName = fc.oneof(fc.constantFrom(...FIELD_NAMES), nasty);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    nasty,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(1, 3, 5, 0, -1, 2 ** 53, 1e308),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(nasty, tie("v"), { maxKeys: 4 }),
  ),
})).v;

const jsonPayload = fc.dictionary(fieldName, value, { maxKeys: 6 }).map((o) => Buffer.from(JSON.stringify(o)));
/** Known fields only, with plausible values: reaches past the schema check into the handlers. */
const plausible = fc.oneof(fc.constantFrom("k", "fuzz", "", "a/", "/", "REPLACE", "COPY", "bytes=0-1", "bytes=5-", '"x"', "*", "Tue, 01 Jan 2030 00:00:00 GMT"), fc.nat({ max: 20_000 }), fc.boolean(), value);
const structuredPayload = fc
  .tuple(fc.constantFrom({}, { key: "k" }, { bucket: BUCKET }), fc.dictionary(fc.constantFrom(...FIELD_NAMES.filter((f) => f !== "v")), plausible, { maxKeys: 3 }))
  .map(([base, o]) => Buffer.from(JSON.stringify({ ...base, ...o })));
const payload = fc.oneof(
  { weight: 4, arbitrary: jsonPayload },
  { weight: 4, arbitrary: structuredPayload },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) }, // invalid UTF-8, not JSON
  { weight: 1, arbitrary: fc.constantFrom(Buffer.from([0x7b, 0x22, 0x6b, 0x65, 0x79, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])) }, // {"key":"<ff fe>"}
  { weight: 1, arbitrary: fc.integer({ min: 64 * 1024, max: 900 * 1024 }).map((n) => Buffer.alloc(n, 0x7b)) }, // oversized
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
);
const HEADER_NAMES = [H.key, H.keyB64, H.stream, H.direct, H.commit, H.contentType, H.contentMd5, H.sha256, H.ifMatch, H.ifNoneMatch, H.uploadId, H.partNumber, `${H.metaPrefix}x`, H.requestId, "Shoal-Keepalive", "Shoal-Abort", "Shoal-End", "Nats-Service-Error-Code"];
const headerValue = fc.oneof(fc.constantFrom("1", "0", "*", "", "fuzz", "AAAA", "//79"), fc.string({ maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 })).map((v) => v.replace(/[\r\n]/g, " "));
const headers = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...HEADER_NAMES), fc.stringMatching(/^[!-9;-~]{1,20}$/)), headerValue), { maxLength: 5 });
/** The bucket token of a per-bucket subject: the real bucket, or something no valid name maps to. */
const token = fc.oneof({ weight: 6, arbitrary: fc.constant(BUCKET) }, fc.constantFrom("a__b", "Fuzz", "-x-", "ab", "xn--a", "127_0_0_1"), { weight: 1, arbitrary: fc.stringMatching(/^[!-)+,\-/-=?-~]{1,30}$/) });

async function request(nc: NatsConnection, subject: string, data: Uint8Array, hdrs: Array<[string, string]>) {
  const h = natsHeaders();
  for (const [k, v] of hdrs) h.append(k, v);
  return nc.request(subject, data, { timeout: 10_000, headers: h });
}

/** A raw NATS client: headers no library would build (bad names, no colon, invalid UTF-8). Resolves with the replies counted. */
async function rawRequests(url: string, subject: string, headerBlocks: Buffer[]): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: "127.0.0.1", port: Number(u.port) });
    let text = "";
    let connected = false;
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve((text.match(/MSG _RAW\./g) ?? []).length); // MSG and HMSG
    };
    const timer = setTimeout(finish, 8000);
    sock.on("error", reject);
    sock.on("data", (d) => {
      text += d.toString("latin1");
      if (!connected && text.includes("\r\n")) {
        connected = true;
        const auth = u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {};
        sock.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, no_responders: true, ...auth })}\r\nSUB _RAW.* 1\r\n`);
        headerBlocks.forEach((hb, i) => {
          const body = Buffer.from("{}");
          sock.write(Buffer.concat([Buffer.from(`HPUB ${subject} _RAW.${i} ${hb.length} ${hb.length + body.length}\r\n`), hb, body, Buffer.from("\r\n")]));
        });
      }
      if ((text.match(/MSG _RAW\./g) ?? []).length >= headerBlocks.length) finish();
    });
  });
}

async function stillServes(t: import("ava").ExecutionContext, client: ShoalClient, actors: ActorInstance[], nc: NatsConnection): Promise<void> {
  // a bucket of its own: the fuzz may delete "fuzz" itself, as it may
  // (shoal.v1.bucket.delete with {"bucket":"fuzz","force":true} is a valid
  // request — CI drew it once and this check then got NoSuchBucket)
  const alive = `alive-${Date.now().toString(36)}`;
  await client.createBucket(alive);
  await client.put(alive, "alive", "yes");
  t.is(Buffer.from(await client.getBytes(alive, "alive")).toString(), "yes");
  for (const a of actors) t.true(a.connection && !a.connection.isClosed(), `${a.kind} still connected`);
  const m = await nc.request("shoal.v1.health", "", { timeout: 10_000 });
  t.is(errorFromWire((h) => m.headers?.get(h) || undefined, m.string()), undefined, "health-monitor still serves");
}

test("every subject every actor serves: random requests get a typed error or a result, and the actors keep serving", async (t) => {
  t.timeout(120_000);
  const srv = await startServer(t);
  const actors = [
    await runActor(t, srv.url, storage),
    await runActor(t, srv.url, replicator),
    await runActor(t, srv.url, healthMonitor, { nats: { sysUser: TEST_AUTH.sysUser, sysPass: TEST_AUTH.sysPassword } }),
  ];
  const client = await ShoalClient.connect({ servers: srv.url });
  t.teardown(() => client.close());
  await client.createBucket(BUCKET);
  await client.put(BUCKET, "k", "v");
  const nc = await connectTo(t, srv.url);

  const served = actors.flatMap((a) => a.served.map((s) => ({ ...s, actor: a.kind })));
  // the contract at the top of each actor names everything it registered
  for (const a of actors) for (const s of a.served) t.true(a.def.contract.serves?.includes(s.subject), `${a.kind}'s contract lists ${s.subject}`);
  t.true(served.length >= 19, `derived ${served.length} subjects from the actors' registrations`);
  const seen = new Map<string, number>();
  const codes = new Map<string, number>();

  const property = fc.asyncProperty(fc.nat({ max: served.length - 1 }), token, payload, headers, async (i, tok, data, hdrs) => {
    const s = served[i]!;
    const subject = s.subject.replace("*", () => tok); // a function: "$`" in tok is not a replacement pattern
    const m = await request(nc, subject, data, hdrs);
    seen.set(s.subject, (seen.get(s.subject) ?? 0) + 1);
    const err = errorFromWire((h) => m.headers?.get(h) || undefined, m.data.length < 65536 ? m.string() : undefined);
    if (!err) return true; // a result
    codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    // typed, known, not an internal fault, and the header text is header-safe
    const text = m.headers?.get("Nats-Service-Error") ?? "";
    if (!isErrorCode(m.headers?.get("Shoal-Error")) || /[\u0000-\u001f\u007f]/.test(text) || text.length > 256) return false;
    if (err.code === "InternalError") throw new Error(`InternalError from ${subject}`);
    return true;
  });
  await checkProperty(t, property, { numRuns: RUNS, interruptAfterTimeLimit: 40_000, ...(SEED !== undefined ? { seed: SEED } : {}) }, Math.min(RUNS, 100));
  t.log(`requests per subject: ${JSON.stringify(Object.fromEntries(seen))}; error codes: ${JSON.stringify(Object.fromEntries(codes))}`);

  // headers no client library would send, on a per-bucket endpoint and on a bucket endpoint
  const blocks = [
    "NATS/1.0\r\nBad Name: x\r\n\r\n",
    "NATS/1.0\r\nShoal-Key: \xff\xfe\r\n\r\n",
    "NATS/1.0\r\nno colon here\r\n\r\n",
    "NATS/1.0 abc def\r\nShoal-Key: k\r\n\r\n",
    "NATS/1.0\r\nShoal-Key:\r\n\r\n",
    `NATS/1.0\r\n${H.requestId}: ${"é".repeat(200)}\r\n\r\n`,
  ].map((s) => Buffer.from(s, "latin1"));
  for (const subject of [`shoal.v1.obj.put.${BUCKET}`, `shoal.v1.obj.get.${BUCKET}`, "shoal.v1.bucket.info"]) {
    t.is(await rawRequests(srv.url, subject, blocks), blocks.length, `${subject}: every raw request answered`);
  }
  await stillServes(t, client, actors, nc);
});

test("the subjects of transfer sessions (direct uploads, streamed puts): random messages and commits never kill the actor; every request is answered", async (t) => {
  t.timeout(120_000);
  const srv = await startServer(t);
  const actors = [await runActor(t, srv.url, storage)];
  const client = await ShoalClient.connect({ servers: srv.url });
  t.teardown(() => client.close());
  await client.createBucket(BUCKET);
  const nc = await connectTo(t, srv.url);
  const sessionMsg = fc.record({
    headers: fc.array(
      fc.tuple(fc.constantFrom("Shoal-Commit", "Shoal-Abort", "Shoal-Keepalive", "Shoal-Seq", "Shoal-End", H.requestId), fc.oneof(fc.constantFrom("1", "0", "-1", "InternalError", "NoSuchKey", "x"), headerValue)),
      { maxLength: 3 },
    ),
    data: fc.oneof(
      payload,
      fc.record({ v: fc.constantFrom(1, 2), size: fc.oneof(fc.nat(), fc.constant(-1), fc.constant(2 ** 60)), md5: fc.oneof(fc.constant("0".repeat(32)), fc.string()), sha256: fc.oneof(fc.constant(`${"A".repeat(43)}=`), fc.string()) }).map((o) => Buffer.from(JSON.stringify(o))),
    ),
    asRequest: fc.boolean(),
  });
  let requests = 0;
  const property = fc.asyncProperty(fc.constantFrom("direct", "stream"), fc.array(sessionMsg, { minLength: 1, maxLength: 4 }), async (mode, msgs) => {
    const h = natsHeaders();
    h.set(H.key, "sess");
    h.set(mode === "direct" ? H.direct : H.stream, "1");
    const offer = (await nc.request(`shoal.v1.obj.put.${BUCKET}`, "", { headers: h, timeout: 10_000 })).json<{ subject: string }>();
    for (const [i, m] of msgs.entries()) {
      const mh = natsHeaders();
      for (const [k, v] of m.headers) mh.append(k, v);
      // a direct session answers every request; a streamed transfer answers its end marker (data messages are acknowledged by the window)
      const answered = mode === "direct" || m.headers.some(([k, v]) => k === "Shoal-End" && v.trim() !== "");
      if (!(m.asRequest && answered)) {
        nc.publish(offer.subject, m.data, { headers: mh });
        continue;
      }
      requests++;
      try {
        const r = await nc.request(offer.subject, m.data, { headers: mh, timeout: mode === "stream" && i > 0 ? 3000 : 10_000 });
        const err = errorFromWire((x) => r.headers?.get(x) || undefined, r.string());
        // (a sender's abort code is echoed back to it: an abort saying InternalError is answered so)
        const saidInternal = m.headers.some(([k, v]) => k === "Shoal-Abort" && v === "InternalError");
        if (err?.code === "InternalError" && !saidInternal) throw new Error(`InternalError from a ${mode} session: ${r.string()}`);
      } catch (e) {
        // a session that already ended has no responder: the server says so at once. A streamed
        // transfer that an earlier message of the same session ended may also drop a request that
        // reached it while it unsubscribed (src/transfer): tolerated only in that case.
        const ended = e instanceof Error && /no responders/i.test(e.message);
        const racedEnd = mode === "stream" && i > 0 && e instanceof Error && e.name === "TimeoutError";
        if (!ended && !racedEnd) throw e;
      }
    }
    // end whatever is left of the session
    const ab = natsHeaders();
    ab.set("Shoal-Abort", "Aborted");
    nc.publish(offer.subject, "", { headers: ab });
    return true;
  });
  await checkProperty(t, property, { numRuns: Math.min(RUNS, 60), interruptAfterTimeLimit: 40_000, ...(SEED !== undefined ? { seed: SEED } : {}) }, 10);
  t.log(`${requests} session requests answered`);
  await client.put(BUCKET, "alive", "yes");
  t.is(Buffer.from(await client.getBytes(BUCKET, "alive")).toString(), "yes");
  t.true(!actors[0]!.connection.isClosed());
});
