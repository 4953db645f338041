/**
 * The console's HTTP API against a real nats-server, storage actor and S3
 * gateway: sessions and their cookie, CSRF, login throttling, buckets,
 * uploads (single and in parts, cancelled), downloads, share links fetched
 * without a session, and that the secret key appears in no response and no
 * log line.
 */
import test, { type ExecutionContext } from "ava";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { startConsoleStack, S3_CREDS } from "../helpers/console.ts";
import { connectTo, tempDir } from "../helpers/nats.ts";
import { controlSubject } from "../../src/subjects/index.ts";
import { LoginThrottle } from "../../src/console/session.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A cookie-keeping client for one console; it records every response for the secret check. */
class Browser {
  cookie = "";
  csrf = "";
  readonly seen: string[] = [];
  constructor(readonly base: string) {}

  async call(method: string, path: string, o: { json?: unknown; body?: Uint8Array | string; headers?: Record<string, string>; csrf?: boolean; cookie?: boolean } = {}) {
    const headers: Record<string, string> = { ...o.headers };
    if (o.cookie !== false && this.cookie) headers["cookie"] = this.cookie;
    if (o.csrf !== false && method !== "GET" && this.csrf) headers["x-csrf-token"] = this.csrf;
    let body: RequestInit["body"] | undefined;
    if (o.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(o.json);
    } else if (o.body !== undefined) body = o.body as RequestInit["body"];
    const res = await fetch(this.base + path, { method, headers, body, redirect: "manual" });
    const buf = new Uint8Array(await res.arrayBuffer());
    const text = Buffer.from(buf).toString("utf8");
    this.seen.push(JSON.stringify([...res.headers]) + text);
    const set = res.headers.get("set-cookie");
    if (set) {
      const v = set.split(";")[0]!;
      this.cookie = v.endsWith("=") ? "" : v;
    }
    let json: any = undefined;
    if (res.headers.get("content-type")?.includes("json")) json = JSON.parse(text);
    return { status: res.status, json, buf, text, headers: res.headers, setCookie: set };
  }

  async login(secret: string = S3_CREDS.secretKey, accessKey: string = S3_CREDS.accessKey) {
    const r = await this.call("POST", "/api/login", { json: { accessKey, secretKey: secret } });
    if (r.status === 200) this.csrf = r.json.csrf;
    return r;
  }
}

function assertNoSecret(t: ExecutionContext, b: Browser, lines: Array<Record<string, unknown>>) {
  for (const s of b.seen) t.false(s.includes(S3_CREDS.secretKey), "a response carried the secret key");
  const log = lines.map((l) => JSON.stringify(l)).join("\n");
  t.true(log.length > 0);
  t.false(log.includes(S3_CREDS.secretKey), "the log holds the secret key");
}

test("no session: every API route answers 401 NotAuthenticated, and nothing changes", async (t) => {
  const { consoleUrl, client } = await startConsoleStack(t);
  await client.createBucket("keep");
  const b = new Browser(consoleUrl);
  const routes: Array<[string, string]> = [
    ["GET", "/api/session"],
    ["GET", "/api/buckets"],
    ["POST", "/api/buckets"],
    ["DELETE", "/api/buckets/keep"],
    ["GET", "/api/buckets/keep/objects"],
    ["GET", "/api/buckets/keep/object?key=a"],
    ["GET", "/api/buckets/keep/download?key=a"],
    ["PUT", "/api/buckets/keep/object?key=a"],
    ["POST", "/api/buckets/keep/delete"],
    ["POST", "/api/buckets/keep/uploads"],
    ["PUT", "/api/buckets/keep/uploads/x/parts/1?key=a"],
    ["POST", "/api/buckets/keep/uploads/x/complete"],
    ["DELETE", "/api/buckets/keep/uploads/x?key=a"],
    ["POST", "/api/buckets/keep/share"],
    ["GET", "/api/cluster"],
    ["GET", "/api/events"],
    ["POST", "/api/logout"],
  ];
  for (const [m, p] of routes) {
    const r = await b.call(m, p, m === "PUT" ? { body: "x" } : m === "GET" ? {} : { json: { name: "evil", key: "a", keys: ["a"] } });
    t.is(r.status, 401, `${m} ${p}`);
    t.is(r.json?.error?.code, "NotAuthenticated", `${m} ${p}`);
    t.truthy(r.json?.error?.hint, "says what to do");
  }
  // a made-up cookie is no session either
  b.cookie = "shoal_console=" + randomBytes(32).toString("base64url");
  t.is((await b.call("GET", "/api/buckets")).status, 401);
  t.deepEqual((await client.listBuckets()).map((x) => x.name), ["keep"]);
});

test("login: a wrong key is refused; the right one sets an HttpOnly SameSite=Strict cookie (not Secure over plain HTTP) and returns no secret; logout ends the session", async (t) => {
  const { consoleUrl, log } = await startConsoleStack(t);
  const b = new Browser(consoleUrl);
  const wrong = await b.login("not-the-secret");
  t.is(wrong.status, 403);
  t.is(wrong.json.error.code, "AccessDenied");
  t.is(wrong.setCookie, null);
  t.is((await b.login(S3_CREDS.secretKey, "NOSUCHKEY")).status, 403);
  const ok = await b.login();
  t.is(ok.status, 200);
  const flags = ok.setCookie!.split(";").map((s) => s.trim());
  t.regex(flags[0]!, /^shoal_console=[A-Za-z0-9_-]{43}$/);
  t.true(flags.includes("HttpOnly"));
  t.true(flags.includes("SameSite=Strict"));
  t.true(flags.includes("Path=/"));
  t.false(flags.includes("Secure"));
  const maxAge = Number(flags.find((f) => f.startsWith("Max-Age="))!.slice(8));
  t.true(maxAge > 8 * 3600 - 60 && maxAge <= 8 * 3600, `the cookie lives as long as the session may (${maxAge} s), not just the idle hour`);
  t.deepEqual(Object.keys(ok.json).sort(), ["accessKey", "csrf", "expires", "publicUrl", "version"]);
  t.is((await b.call("GET", "/api/session")).json.accessKey, S3_CREDS.accessKey);
  t.is((await b.call("GET", "/api/buckets")).status, 200);
  const cookie = b.cookie;
  const out = await b.call("POST", "/api/logout");
  t.is(out.status, 200);
  t.regex(out.setCookie!, /Max-Age=0/);
  b.cookie = cookie; // the old cookie no longer works
  t.is((await b.call("GET", "/api/buckets")).status, 401);
  assertNoSecret(t, b, log.lines());
});

test("CSRF: no state change without the session's token, with a wrong one, or from another origin", async (t) => {
  const { consoleUrl, client } = await startConsoleStack(t);
  const b = new Browser(consoleUrl);
  await b.login();
  const attempts = [
    await b.call("POST", "/api/buckets", { json: { name: "nocsrf" }, csrf: false }),
    await b.call("POST", "/api/buckets", { json: { name: "nocsrf" }, csrf: false, headers: { "x-csrf-token": "A".repeat(43) } }),
    await b.call("POST", "/api/buckets", { json: { name: "nocsrf" }, headers: { origin: "http://evil.example" } }),
    await b.call("POST", "/api/buckets", { json: { name: "nocsrf" }, headers: { "sec-fetch-site": "cross-site" } }),
  ];
  for (const r of attempts) {
    t.is(r.status, 403);
    t.is(r.json.error.code, "CsrfTokenInvalid");
  }
  t.is((await b.call("PUT", "/api/buckets/nocsrf/object?key=a", { body: "x", csrf: false })).status, 403);
  t.is((await b.call("POST", "/api/logout", { csrf: false })).status, 403);
  t.deepEqual(await client.listBuckets(), []);
  // login cannot be forged from another site either
  t.is((await b.call("POST", "/api/login", { json: { accessKey: S3_CREDS.accessKey, secretKey: S3_CREDS.secretKey }, headers: { origin: "http://evil.example" } })).status, 403);
  // a form post (not JSON) is refused
  t.is((await b.call("POST", "/api/buckets", { body: "name=nocsrf", headers: { "content-type": "application/x-www-form-urlencoded" } })).status, 400);
  const made = await b.call("POST", "/api/buckets", { json: { name: "withcsrf" }, headers: { origin: consoleUrl } });
  t.is(made.status, 201);
  t.deepEqual((await client.listBuckets()).map((x) => x.name), ["withcsrf"]);
});

test("repeated failed logins are slowed down (from the third), and a success clears the count", async (t) => {
  const throttle = new LoginThrottle(Date.now, { freeFailures: 2, baseDelayMs: 300, maxDelayMs: 1200, forgetMs: 60_000, maxTracked: 100 });
  const { consoleUrl } = await startConsoleStack(t, { throttle });
  const b = new Browser(consoleUrl);
  const timed = async (secret: string) => {
    const t0 = performance.now();
    const r = await b.login(secret);
    return { status: r.status, ms: performance.now() - t0 };
  };
  const first = [await timed("bad-1"), await timed("bad-2")];
  t.true(first.every((x) => x.status === 403), JSON.stringify(first));
  const third = await timed("bad-3");
  t.is(third.status, 403);
  t.true(third.ms >= 290, `third failure answered after ${third.ms} ms`);
  const fourth = await timed("bad-4");
  t.true(fourth.ms >= 590, `fourth failure answered after ${fourth.ms} ms`);
  // the right key still waits its turn, then works and clears the count
  const right = await timed(S3_CREDS.secretKey);
  t.is(right.status, 200);
  t.true(right.ms >= 1100, `right key after 4 failures answered after ${right.ms} ms`);
  // not cleared, it would wait the cap (1200 ms); the bound leaves room for a loaded machine
  t.true((await timed("bad-5")).ms < 1000);
});

test("sessions expire: after the idle time and after the absolute lifetime", async (t) => {
  let clock = Date.now();
  const { consoleUrl } = await startConsoleStack(t, { now: () => clock, console: { idleTtlMs: 60_000, sessionTtlMs: 300_000 } });
  const b = new Browser(consoleUrl);
  await b.login();
  clock += 59_000;
  t.is((await b.call("GET", "/api/buckets")).status, 200, "used within the idle time");
  clock += 59_000;
  t.is((await b.call("GET", "/api/buckets")).status, 200, "the idle timer restarts on use");
  clock += 61_000;
  const idle = await b.call("GET", "/api/buckets");
  t.is(idle.status, 401);
  t.is(idle.json.error.code, "NotAuthenticated");
  await b.login();
  for (let i = 0; i < 6; i++) {
    clock += 50_000;
    await b.call("GET", "/api/buckets");
  }
  t.is((await b.call("GET", "/api/buckets")).status, 401, "ended 300 s after login however busy");
});

test("buckets, uploads (one PUT, in parts, cancelled), listing, download, share links with and without expiry, delete; no secret anywhere", async (t) => {
  let clockShift = 0;
  const { consoleUrl, client, endpoint, log } = await startConsoleStack(t, { now: () => Date.now() + clockShift, console: { idleTtlMs: 3 * 3_600_000 } });
  const b = new Browser(consoleUrl);
  await b.login();
  t.is((await b.call("POST", "/api/buckets", { json: { name: "Bad_Name" } })).json.error.code, "InvalidBucketName");
  t.is((await b.call("POST", "/api/buckets", { json: { name: "media", replicas: 2 } })).json.error.code, "InvalidReplicas");
  t.is((await b.call("POST", "/api/buckets", { json: { name: "media", replicas: 1 } })).status, 201);

  // one PUT
  const small = randomBytes(300_000);
  const put = await b.call("PUT", "/api/buckets/media/object?key=docs/a.bin", { body: small, headers: { "content-type": "application/x-test" } });
  t.is(put.status, 200, put.text);
  t.is(put.json.size, small.length);
  await b.call("PUT", "/api/buckets/media/object?key=docs/note.txt", { body: "hello, console", headers: { "content-type": "text/plain" } });

  // in parts
  const big = randomBytes(13 * 1024 * 1024);
  const up = await b.call("POST", "/api/buckets/media/uploads", { json: { key: "big.bin", contentType: "application/x-big" } });
  t.is(up.status, 201);
  const id = encodeURIComponent(up.json.uploadId);
  const p1 = await b.call("PUT", `/api/buckets/media/uploads/${id}/parts/1?key=big.bin`, { body: big.subarray(0, 8 * 1024 * 1024) });
  const p2 = await b.call("PUT", `/api/buckets/media/uploads/${id}/parts/2?key=big.bin`, { body: big.subarray(8 * 1024 * 1024) });
  t.is(p1.status, 200);
  const done = await b.call("POST", `/api/buckets/media/uploads/${id}/complete`, { json: { key: "big.bin", parts: [p1.json, p2.json].map((p) => ({ partNumber: p.partNumber, etag: p.etag })) } });
  t.is(done.status, 200, done.text);
  t.regex(done.json.etag, /-2$/);
  const got = await b.call("GET", "/api/buckets/media/download?key=big.bin");
  t.is(got.status, 200);
  t.is(sha(got.buf), sha(big));
  t.regex(got.headers.get("content-disposition")!, /^attachment; filename="big.bin"/);
  t.is(got.headers.get("content-type"), "application/x-big");

  // cancelled in parts: nothing left behind
  const c = await b.call("POST", "/api/buckets/media/uploads", { json: { key: "cancelled.bin" } });
  const cid = encodeURIComponent(c.json.uploadId);
  t.is((await b.call("PUT", `/api/buckets/media/uploads/${cid}/parts/1?key=cancelled.bin`, { body: big.subarray(0, 6 * 1024 * 1024) })).status, 200);
  t.is((await b.call("DELETE", `/api/buckets/media/uploads/${cid}?key=cancelled.bin`)).status, 200);
  t.deepEqual((await client.listMultipartUploads("media")).uploads, []);
  await t.throwsAsync(client.head("media", "cancelled.bin"), { message: /not exist/ });

  // a single PUT cut off mid-body, streamed (4 MiB) or read whole (300 KiB): no object
  for (const [name, declared, sent] of [["cut.bin", 4 * 1024 * 1024, 1024 * 1024], ["cut-small.bin", 300 * 1024, 100 * 1024]] as const) {
    await new Promise<void>((resolve) => {
      const u = new URL(consoleUrl);
      const req = httpRequest({ host: u.hostname, port: u.port, method: "PUT", path: `/api/buckets/media/object?key=${name}`, headers: { cookie: b.cookie, "x-csrf-token": b.csrf, "content-length": String(declared) } });
      req.on("error", () => resolve());
      req.write(randomBytes(sent), () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 200),
      );
    });
    await t.throwsAsync(client.head("media", name), { message: /not exist/ }, name);
  }

  // listing: folders and objects, paging
  const root = await b.call("GET", "/api/buckets/media/objects?max=1");
  t.deepEqual(root.json.prefixes, []);
  t.is(root.json.objects.length, 1);
  t.truthy(root.json.next);
  t.regex(root.headers.get("server-timing")!, /^app;dur=[\d.]+$/);
  const all = await b.call("GET", "/api/buckets/media/objects");
  t.deepEqual(all.json.prefixes, ["docs/"]);
  t.deepEqual(all.json.objects.map((o: { key: string }) => o.key), ["big.bin"]);
  const docs = await b.call("GET", "/api/buckets/media/objects?prefix=docs/");
  t.deepEqual(docs.json.objects.map((o: { key: string }) => o.key), ["docs/a.bin", "docs/note.txt"]);
  const det = await b.call("GET", "/api/buckets/media/object?key=docs/note.txt");
  t.like(det.json, { size: 14, contentType: "text/plain", previewable: true });
  const preview = await b.call("GET", "/api/buckets/media/download?key=docs/note.txt&inline=1");
  t.is(preview.text, "hello, console");
  t.is(preview.headers.get("content-type"), "text/plain; charset=utf-8");
  t.regex(preview.headers.get("content-security-policy")!, /sandbox/);
  t.is((await b.call("GET", "/api/buckets/media/download?key=docs/a.bin&inline=1")).headers.get("content-disposition")!.split(";")[0], "attachment", "not previewable: downloaded");
  t.is((await b.call("GET", "/api/buckets/media/object?key=nope")).json.error.code, "NoSuchKey");
  // bad names are the client's mistake (400 with a hint), never an internal error
  for (const path of ["/api/buckets/a%20b/objects", "/api/buckets/x*y/object?key=a", "/api/buckets/A..B/download?key=a", "/api/buckets/%E0%A4%A/objects", "/api/events?bucket=a>b"]) {
    const r = await b.call("GET", path);
    t.is(r.status, 400, path);
    t.regex(r.json.error.code, /^Invalid(BucketName|Argument)$/, path);
    t.truthy(r.json.error.hint);
  }
  t.is((await b.call("GET", "/api/buckets/media/object?key=a%01b")).json.error.code, "InvalidKey"); // LF is a valid key character (S3); U+0001 is not
  t.is((await b.call("PUT", "/api/buckets/media/object?key=a%01b", { body: "x" })).json.error.code, "InvalidKey");

  // share link: works without a session, for the S3 endpoint
  const sh = await b.call("POST", "/api/buckets/media/share", { json: { key: "docs/a.bin", expiresIn: 3600 } });
  t.is(sh.status, 200);
  t.true(sh.json.url.startsWith(`${endpoint}/media/docs/a.bin?`), sh.json.url);
  const plain = await fetch(sh.json.url);
  t.is(plain.status, 200);
  t.is(sha(new Uint8Array(await plain.arrayBuffer())), sha(small));
  t.is((await b.call("POST", "/api/buckets/media/share", { json: { key: "docs/a.bin", expiresIn: 7 * 86400 + 1 } })).json.error.code, "InvalidArgument");
  t.is((await b.call("POST", "/api/buckets/media/share", { json: { key: "nope", expiresIn: 60 } })).json.error.code, "NoSuchKey");
  // a link that has expired (signed an hour ago for 60 s) is refused
  clockShift = -3600_000;
  const old = await b.call("POST", "/api/buckets/media/share", { json: { key: "docs/a.bin", expiresIn: 60 } });
  clockShift = 0;
  const expired = await fetch(old.json.url);
  t.is(expired.status, 403);
  t.regex(await expired.text(), /AccessDenied|expired/i);
  // tampering breaks it
  t.is((await fetch(sh.json.url.replace("docs/a.bin", "docs/note.txt"))).status, 403);

  // delete several, then the bucket (typed confirmation when not empty)
  const del = await b.call("POST", "/api/buckets/media/delete", { json: { keys: ["docs/a.bin", "docs/note.txt"] } });
  t.is(del.status, 200, del.text);
  t.deepEqual(del.json.deleted.sort(), ["docs/a.bin", "docs/note.txt"]);
  const refused = await b.call("DELETE", "/api/buckets/media");
  t.is(refused.status, 409);
  t.is(refused.json.error.code, "BucketNotEmpty");
  t.is((await b.call("DELETE", "/api/buckets/media", { json: { confirm: "medi" } })).status, 409);
  t.is((await b.call("DELETE", "/api/buckets/media", { json: { confirm: "media" } })).status, 200);
  t.deepEqual(await client.listBuckets(), []);
  t.is((await b.call("POST", "/api/buckets", { json: { name: "empty" } })).status, 201);
  t.is((await b.call("DELETE", "/api/buckets/empty")).status, 200, "an empty bucket needs no confirmation");

  assertNoSecret(t, b, log.lines());
  const errors = log.lines().filter((l) => Number(l["level"]) >= 50);
  t.deepEqual(errors, [], "no internal error logged");
});

test("cluster view without a health-monitor or rebalancer says so instead of failing, shows a rebalancer's status when one answers; live events arrive over SSE", async (t) => {
  const { consoleUrl, client, url: natsUrl } = await startConsoleStack(t, { replicator: true });
  const b = new Browser(consoleUrl);
  await b.login();
  const cl = await b.call("GET", "/api/cluster");
  t.is(cl.status, 200);
  t.is(cl.json.health, null);
  t.is(cl.json.healthError.code, "ServiceUnavailable");
  t.is(cl.json.rebalancer, null);
  t.is(cl.json.rebalancerError, null);

  // a rebalancer that answers its status subject is shown as it answers
  const nc = await connectTo(t, natsUrl);
  nc.subscribe(controlSubject("rebalancer", "status"), { callback: (_e, m) => void m.respond(JSON.stringify({ v: 1, state: "moving", done: 3, total: 7 })) });
  await nc.flush();
  const withRebalancer = await b.call("GET", "/api/cluster");
  t.deepEqual(withRebalancer.json.rebalancer, { v: 1, state: "moving", done: 3, total: 7 });
  t.is(withRebalancer.json.rebalancerError, null);

  await client.createBucket("live");
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const res = await fetch(`${consoleUrl}/api/events`, { headers: { cookie: b.cookie }, signal: ac.signal });
  t.is(res.status, 200);
  t.regex(res.headers.get("content-type")!, /^text\/event-stream/);
  const reader = res.body!.getReader();
  await client.put("live", "k1", "v1");
  let text = "";
  const deadline = Date.now() + 20_000;
  while (!text.includes('"key":"k1"') && Date.now() < deadline) {
    const r = await Promise.race([reader.read(), new Promise<{ done: true; value: undefined }>((r) => setTimeout(() => r({ done: true, value: undefined }), deadline - Date.now()))]);
    if (r.done) break;
    text += Buffer.from(r.value!).toString();
  }
  t.regex(text, /data: \{"seq":\d+,"eventName":"s3:ObjectCreated:Put","eventTime":"[^"]+","bucket":"live","key":"k1","size":2\}/);
  ac.abort();
});

test("under TLS the session cookie is Secure (and HSTS is sent)", async (t) => {
  const dir = tempDir(t);
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], { stdio: "ignore" });
  const { consoleUrl } = await startConsoleStack(t, { console: { tlsCert: cert, tlsKey: key } });
  t.true(consoleUrl.startsWith("https://"));
  const u = new URL(consoleUrl);
  const res = await new Promise<{ status: number; cookie: string; hsts: string }>((resolve, reject) => {
    const req = httpsRequest({ host: u.hostname, port: u.port, path: "/api/login", method: "POST", rejectUnauthorized: false, headers: { "content-type": "application/json" } }, (r) => {
      r.resume();
      resolve({ status: r.statusCode!, cookie: String(r.headers["set-cookie"] ?? ""), hsts: String(r.headers["strict-transport-security"] ?? "") });
    });
    req.on("error", reject);
    req.end(JSON.stringify({ accessKey: S3_CREDS.accessKey, secretKey: S3_CREDS.secretKey }));
  });
  t.is(res.status, 200);
  t.regex(res.cookie, /; HttpOnly; SameSite=Strict; Secure$/);
  t.regex(res.hsts, /max-age=/);
});

test("assets: the page, Preact and htm are served from this process with a strict CSP; unknown paths are 404", async (t) => {
  const { consoleUrl } = await startConsoleStack(t);
  const page = await fetch(`${consoleUrl}/`);
  t.is(page.status, 200);
  const html = await page.text();
  t.regex(html, /<script type="importmap">\{"imports":\{"preact":"\/vendor\/preact.mjs"/);
  t.notRegex(html, /https?:\/\//, "no outside URL");
  const csp = page.headers.get("content-security-policy")!;
  t.regex(csp, /script-src 'self' 'sha256-[A-Za-z0-9+/=]+'/);
  t.regex(csp, /frame-ancestors 'none'/);
  t.is(page.headers.get("x-frame-options"), "DENY");
  for (const p of ["/vendor/preact.mjs", "/vendor/preact-hooks.mjs", "/vendor/htm.mjs", "/app.js", "/style.css"]) {
    const r = await fetch(consoleUrl + p);
    t.is(r.status, 200, p);
    const body = await r.text();
    t.notRegex(body, /(src|href)=["']https?:\/\/|import[^;]*from\s*["']https?:/, `${p} loads nothing from outside`);
  }
  const etag = page.headers.get("etag")!;
  t.is((await fetch(`${consoleUrl}/`, { headers: { "if-none-match": etag } })).status, 304);
  t.is((await fetch(`${consoleUrl}/nope.js`)).status, 404);
  t.is((await fetch(`${consoleUrl}/#/cluster`)).status, 200);
});
