/**
 * A store whose JetStream storage limit is reached (docs/errors.md
 * `InsufficientStorage`; docs/architecture.md, "Storage pressure"): the
 * refused write is a typed error (507 over S3) that changes nothing stored,
 * and replaced versions — what a store taking overwrites fills with — are
 * reclaimed at once instead of after the 10-minute read grace.
 */
import test from "ava";
import { request } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startServer, connectTo, TEST_AUTH } from "../helpers/nats.ts";
import { startShoal, runActor } from "../helpers/actors.ts";
import { healthMonitor } from "../../actors/health-monitor/index.ts";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";
import { signRequest } from "../../src/gateway/auth.ts";
import { isShoalError } from "../../src/errors/index.ts";
import { barrierSubject, chunkSubject, chunkSubjectAll, controlSubject } from "../../src/subjects/index.ts";

const MiB = 1024 * 1024;

function s3(endpoint: string, method: string, path: string, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  const url = new URL(endpoint);
  const base = { host: url.host, ...(body ? { "content-length": String(body.length) } : {}) };
  const payloadHash = createHash("sha256").update(body ?? Buffer.alloc(0)).digest("hex");
  const headers = signRequest({ method, rawPath: path, rawQuery: "", headers: base }, S3_CREDS, { payloadHash });
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: headers as Record<string, string> }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("a write refused for want of storage is InsufficientStorage (507 over S3), and nothing stored changes", async (t) => {
  const srv = await startServer(t, { maxFileStore: "32MB" });
  // nothing is ever replaced here: every object is live, the relief has nothing to reclaim
  const { client, endpoint, url } = await startS3(t, { url: srv.url, storage: { sweepIntervalMs: 0 } });
  await client.createBucket("full");
  const bodies: Buffer[] = [];
  let refused: unknown;
  for (let i = 0; i < 40 && refused === undefined; i++) {
    const b = randomBytes(2 * MiB);
    try {
      await client.put("full", `k${i}`, b);
      bodies.push(b);
    } catch (e) {
      refused = e;
    }
  }
  t.true(isShoalError(refused, "InsufficientStorage"), `the first refusal: ${String(refused)}`);
  t.true(bodies.length >= 4, `${bodies.length} objects stored before the limit`);
  // over S3: a new key and an overwrite, both refused with 507 and the S3 code
  const put = await s3(endpoint, "PUT", "/full/s3-new", randomBytes(2 * MiB));
  t.is(put.status, 507);
  t.regex(put.body.toString(), /<Code>InsufficientStorage<\/Code>/);
  const over = await s3(endpoint, "PUT", "/full/k0", randomBytes(2 * MiB));
  t.is(over.status, 507);
  // nothing stored changed: every object reads back whole, the refused ones are absent
  for (const [i, b] of bodies.entries()) t.true(Buffer.from(await client.getBytes("full", `k${i}`)).equals(b), `k${i}`);
  const got = await s3(endpoint, "GET", "/full/k0");
  t.is(got.status, 200);
  t.true(got.body.equals(bodies[0]!));
  t.is((await s3(endpoint, "GET", "/full/s3-new")).status, 404);
  t.deepEqual(
    (await client.listPage("full", {})).contents.map((c) => c.key).sort(),
    bodies.map((_, i) => `k${i}`).sort(),
  );
  // and the refused writes left no chunks behind (they are removed as the write fails)
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const os = await new Objm(nc).open("full");
  const live = new Set([barrierSubject("full"), ...(await Promise.all(bodies.map(async (_, i) => chunkSubject("full", (await os.info(`k${i}`))!.nuid))))]);
  let stray: string[] = [];
  for (let i = 0; i < 50; i++) {
    stray = Object.keys((await jsm.streams.info("OBJ_full", { subjects_filter: chunkSubjectAll("full") })).state.subjects ?? {}).filter((s) => !live.has(s));
    if (stray.length === 0) break;
    await sleep(100);
  }
  t.deepEqual(stray, [], "no chunks but the stored objects'");
});

test("storage pressure: replaced versions are reclaimed at once, so overwrites go on past the store's limit", async (t) => {
  const srv = await startServer(t, { maxFileStore: "40MB" });
  // the read grace of a store at rest (10 min) would hold every replaced version; under
  // pressure the relief sweeps with pressureReadGraceMs instead
  const { client } = await startShoal(t, { url: srv.url, storage: { readGraceMs: 600_000, pressureReadGraceMs: 0, sweepIntervalMs: 0 } });
  await client.createBucket("churn");
  const rounds = 30; // 30 × 4 MiB = 120 MiB through a 40 MB store
  let refusals = 0;
  let last = Buffer.alloc(0);
  const deadline = Date.now() + 60_000;
  for (let i = 0; i < rounds; i++) {
    const b = randomBytes(4 * MiB);
    for (;;) {
      try {
        await client.put("churn", "k", b);
        break;
      } catch (e) {
        if (!isShoalError(e, "InsufficientStorage") || Date.now() > deadline) throw e;
        refusals++;
        await sleep(250);
      }
    }
    last = b;
  }
  t.true(refusals > 0, "the store did fill (else this test proves nothing)");
  t.log(`${refusals} refusals over ${rounds} overwrites (each sets off a relief sweep, which makes room again)`);
  t.true(Buffer.from(await client.getBytes("churn", "k")).equals(last));
});

test("storage pressure ahead of the limit: the health-monitor asks for the relief once JetStream storage passes health.storageWarnRatio, before any write is refused", async (t) => {
  const srv = await startServer(t, { maxFileStore: "40MB" });
  const { client, url } = await startShoal(t, { url: srv.url, storage: { readGraceMs: 600_000, pressureReadGraceMs: 0, sweepIntervalMs: 0 } });
  await runActor(t, url, healthMonitor, { health: { intervalMs: 200, debounceMs: 60_000, storageWarnRatio: 0.5 }, nats: { sysUser: TEST_AUTH.sysUser, sysPass: TEST_AUTH.sysPassword } });
  await client.createBucket("ahead");
  const jsm = await jetstreamManager(await connectTo(t, url));
  const versionsStored = async () => Object.keys((await jsm.streams.info("OBJ_ahead", { subjects_filter: chunkSubjectAll("ahead") })).state.subjects ?? {}).filter((s) => s !== barrierSubject("ahead")).length;
  // twelve 2 MiB overwrites of one key: 24 MiB, past the monitor's 50 % of the 40 MB store and
  // short of its limit — no write is refused (each would throw)
  let last = Buffer.alloc(0);
  for (let i = 0; i < 12; i++) {
    last = randomBytes(2 * MiB);
    await client.put("ahead", "k", last);
  }
  // the replaced versions are reclaimed anyway, within a few looks (without the monitor's
  // request they would stay the 10-minute read grace: twelve versions' chunks)
  let left = await versionsStored();
  for (let i = 0; i < 100 && left > 1; i++) {
    await sleep(100);
    left = await versionsStored();
  }
  t.is(left, 1, "only the live version's chunks are left");
  t.true(Buffer.from(await client.getBytes("ahead", "k")).equals(last), "the live version is whole");
});

test("pressure sweeps on a store full of live data back off: skipped while the wait lasts, the wait doubling while they remove nothing, reset by one that removes something", async (t) => {
  const { client, url } = await startShoal(t, { storage: { readGraceMs: 600_000, pressureReadGraceMs: 0, sweepIntervalMs: 0 } });
  await client.createBucket("live");
  await client.put("live", "a", "1");
  const nc = await connectTo(t, url);
  type Reply = { reports: Array<{ replacedChunksRemoved: number }>; skipped?: boolean };
  const pressure = async () => (await nc.request(controlSubject("storage", "sweep"), JSON.stringify({ v: 1, pressure: true }), { timeout: 10_000 })).json<Reply>();
  const first = await pressure();
  t.falsy(first.skipped, "the first runs");
  t.true((await pressure()).skipped, "removed nothing: the next within 5 s is skipped");
  await sleep(6000);
  t.falsy((await pressure()).skipped, "after 5 s one runs again (and removes nothing)");
  await sleep(6000);
  t.true((await pressure()).skipped, "now the wait is 10 s");
  await sleep(5000);
  await client.put("live", "a", "2"); // a replaced version, removable at once (grace 0)
  const removing = await pressure();
  t.falsy(removing.skipped);
  t.is(removing.reports.find((r) => r)?.replacedChunksRemoved, 1);
  t.falsy((await pressure()).skipped, "one that removed something resets the wait");
  t.is(Buffer.from(await client.getBytes("live", "a")).toString(), "2");
});
