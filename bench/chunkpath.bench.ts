/**
 * Chunk path: 64 MiB PUT and GET at R1 on one local nats-server, comparing
 * Shoal's store layer (src/store) with the stock @nats-io/obj client and raw
 * JetStream (pipelined publishes of the same bytes; ordered consumer read).
 * Median of 3. Prints MB/s and the ratio to raw JetStream.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { NatsServer } from "../src/engine/server.ts";
import { putObject } from "../src/store/writer.ts";
import { readObject, statObject } from "../src/store/reader.ts";
import { ensureStore, storeRef } from "../src/store/bucket.ts";

const SIZE = Number(process.env["BENCH_MIB"] ?? 64) * 1024 * 1024;
const RUNS = 3;
const MiB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
const srv = new NatsServer({ name: "bench", dir, auth: { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" }, maxFileStore: "20GB" });
await srv.start();
const nc = await connect({ servers: srv.url });
const js = jetstream(nc);
const jsm = await jetstreamManager(nc, { timeout: 10_000 });
const body = randomBytes(SIZE);

async function* slices(buf: Buffer, size = 256 * 1024) {
  for (let o = 0; o < buf.length; o += size) yield buf.subarray(o, o + size);
}
function stream(buf: Buffer): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= buf.length) return c.close();
      c.enqueue(buf.subarray(o, (o += 256 * 1024)));
    },
  });
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function timeit(fn: () => Promise<void>): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return SIZE / MiB / median(ts);
}

const rows: Array<[string, number, number]> = [];

// raw JetStream: pipelined 1 MiB publishes (16 in flight), ordered-consumer read
await jsm.streams.add({ name: "RAW", subjects: ["raw.>"], allow_direct: true });
let rawRun = 0;
const rawPut = await timeit(async () => {
  const subj = `raw.${++rawRun}`;
  const inflight: Promise<unknown>[] = [];
  for (let o = 0; o < SIZE; o += MiB) {
    inflight.push(js.publish(subj, body.subarray(o, o + MiB)));
    if (inflight.length >= 16) await inflight.shift();
  }
  await Promise.all(inflight);
});
const rawGet = await timeit(async () => {
  const c = await js.consumers.get("RAW", { filter_subjects: "raw.1", deliver_policy: DeliverPolicy.All });
  const msgs = await c.consume();
  let got = 0;
  for await (const m of msgs) {
    got += m.data.length;
    if (got >= SIZE) break;
  }
});
rows.push(["raw JetStream (1 MiB msgs, 16 in flight / ordered consumer)", rawPut, rawGet]);

// stock @nats-io/obj, defaults and 1 MiB chunks
const os = await new Objm(nc).create("stock");
let sk = 0;
const stockPut = await timeit(async () => void (await os.put({ name: `o${++sk}` }, stream(body))));
const stockGet = await timeit(async () => void (await os.getBlob("o1")));
rows.push(["@nats-io/obj defaults (128 KiB chunks)", stockPut, stockGet]);
let sk2 = 0;
const stockPut1 = await timeit(async () => void (await os.put({ name: `m${++sk2}`, options: { max_chunk_size: MiB } }, stream(body))));
const stockGet1 = await timeit(async () => void (await os.getBlob("m1")));
rows.push(["@nats-io/obj, 1 MiB chunks", stockPut1, stockGet1]);

// Shoal store layer
const store = storeRef("bench");
await ensureStore(jsm, store, 1);
const jet = { nc, js, jsm };
let n = 0;
const shoalPut = await timeit(async () => void (await putObject(jet, store, `s${++n}`, slices(body))));
const info = await statObject(jsm, store, "s1");
const shoalGet = await timeit(async () => {
  for await (const _ of readObject(jsm, store, info)) void _;
});
rows.push(["Shoal store (src/store: windowed publish / Direct Get read-ahead)", shoalPut, shoalGet]);

console.log(`\n${SIZE / MiB} MiB objects, R1, one nats-server ${srv.url}, median of ${RUNS}`);
console.log(`| path | PUT MB/s | GET MB/s | PUT vs raw | GET vs raw |`);
console.log(`|---|---|---|---|---|`);
for (const [name, p, g] of rows) console.log(`| ${name} | ${p.toFixed(0)} | ${g.toFixed(0)} | ${(p / rawPut).toFixed(2)} | ${(g / rawGet).toFixed(2)} |`);

await nc.close();
await srv.stop();
rmSync(dir, { recursive: true, force: true });
