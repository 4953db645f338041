/**
 * Reads in flight (issue 14, defect 7): a GET that has started must finish
 * with the bytes of the version it started on, even when that version is
 * overwritten or deleted meanwhile. The request path never deletes a
 * replaced version's chunks; the sweep does, after storage.readGraceMs.
 */
import test from "ava";
import { randomBytes, createHash } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import { ShoalClient } from "../../src/client/index.ts";

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Starts a GET, takes its first piece, runs `meanwhile`, then reads the rest. */
async function readAcross(client: ShoalClient, bucket: string, key: string, meanwhile: () => Promise<unknown>): Promise<Buffer> {
  const got = await client.get(bucket, key, { windowBytes: MiB });
  const it = got.body[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  const first = await it.next();
  if (!first.done) parts.push(Buffer.from(first.value));
  await meanwhile();
  for (let r = await it.next(); !r.done; r = await it.next()) parts.push(Buffer.from(r.value));
  return Buffer.concat(parts);
}

// Larger than the readers' read-ahead (8 MiB), so most chunks are fetched after the change.
const SIZE = 20 * MiB + 12_345;

for (const direct of [true, false]) {
  test(`a GET in flight (${direct ? "direct read" : "streamed by the actor"}) finishes with the old bytes across an overwrite and a delete; the sweep reclaims them after the grace period`, async (t) => {
    const { url, client } = await startShoal(t, { storage: { readGraceMs: 1500, sweepIntervalMs: 0 } });
    const c = direct ? client : await ShoalClient.connect({ servers: url }, { direct: false });
    if (!direct) t.teardown(() => c.close());
    const bucket = direct ? "inflight-d" : "inflight-s";
    await client.createBucket(bucket);
    const v1 = randomBytes(SIZE);
    const v2 = randomBytes(SIZE - 1000);
    await client.put(bucket, "over", v1);
    await client.put(bucket, "gone", v1);

    const a = await readAcross(c, bucket, "over", () => client.put(bucket, "over", v2));
    t.is(a.length, v1.length);
    t.is(sha(a), sha(v1), "the overwritten version read whole");
    t.is(sha(Buffer.from(await client.getBytes(bucket, "over"))), sha(v2), "a new GET sees the new version");

    const b = await readAcross(c, bucket, "gone", () => client.delete(bucket, "gone"));
    t.is(sha(b), sha(v1), "the deleted version read whole");

    // after the grace period the sweep removes the replaced versions' chunks
    const nc = await connectTo(t, url);
    const jsm = await jetstreamManager(nc);
    const stream = `OBJ_${bucket}`;
    const before = (await jsm.streams.info(stream)).state.bytes;
    let removed = 0;
    await eventually(
      async () => {
        const r = (await nc.request("shoal.ctl.storage.sweep", JSON.stringify({ v: 1, bucket }), { timeout: 20_000 })).json<{ reports: Array<{ replacedChunksRemoved: number }> }>();
        removed += r.reports[0]?.replacedChunksRemoved ?? 0;
        return removed;
      },
      (n) => n >= 2,
      { timeoutMs: 20_000, intervalMs: 500, what: "the sweep removing the replaced versions' chunks" },
    );
    t.is(removed, 2, "each replaced version's chunks removed once");
    const after = (await jsm.streams.info(stream)).state.bytes;
    t.true(before - after >= 2 * SIZE, `${before - after} bytes reclaimed`);
    t.is(sha(Buffer.from(await client.getBytes(bucket, "over"))), sha(v2));
  });
}
