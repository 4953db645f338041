/**
 * The GET path (issue 15, read half): whole and ranged reads byte for byte
 * by batched Direct Get, the chunks a range needs and no others, objects
 * written by stock @nats-io/obj, a reader that stops early, and a slow HTTP
 * reader that does not make the gateway hold the object.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import * as zlib from "node:zlib";
import { jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";
import { readObject } from "../../src/store/reader.ts";
import { statObject } from "../../src/store/reader.ts";
import { metaSubject } from "../../src/subjects/index.ts";

const MiB = 1024 * 1024;

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

test("whole and ranged GETs of a many-chunk object are byte for byte; a range fetches only its chunks", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("gpbig");
  const body = randomBytes(40 * MiB + 777);
  await client.put("gpbig", "big", body);
  const got = await collect((await client.get("gpbig", "big")).body);
  t.true(got.equals(body), "whole object");
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const store = { name: "gpbig", stream: "OBJ_gpbig" };
  const info = await statObject(jsm, store, "big");
  t.true(info.chunks > 30);
  const cs = info.chunkSize;
  const ranges: Array<[number, number]> = [[0, 0], [cs - 1, cs], [5 * cs + 3, 9 * cs + 17], [body.length - 10, body.length - 1], [0, body.length - 2], [17 * cs, 17 * cs + cs - 1]];
  for (const [a, b] of ranges) {
    const fetched: number[] = [];
    const r = await collect(readObject(jsm, store, info, { range: { start: a, end: b }, onChunkFetched: (i) => fetched.push(i) }));
    t.true(r.equals(body.subarray(a, b + 1)), `range ${a}-${b}`);
    const first = Math.floor(a / cs);
    const last = Math.floor(b / cs);
    t.deepEqual(fetched, Array.from({ length: last - first + 1 }, (_, i) => first + i), `range ${a}-${b} fetched only chunks ${first}…${last}`);
    const viaSdk = await collect((await client.get("gpbig", "big", { range: `bytes=${a}-${b}` })).body);
    t.true(viaSdk.equals(body.subarray(a, b + 1)), `SDK range ${a}-${b}`);
  }
});

test("objects written by stock @nats-io/obj read back through Shoal, whole and ranged", async (t) => {
  const { url, client } = await startShoal(t);
  const nc = await connectTo(t, url);
  const os = await new Objm(nc).create("stockgp");
  const body = randomBytes(3 * MiB + 4321);
  // small chunks: many messages on the chunk subject, no sequences in the metadata
  await os.put({ name: "s.bin", options: { max_chunk_size: 64 * 1024 } }, new Response(body).body!);
  const got = await collect((await client.get("stockgp", "s.bin")).body);
  t.true(got.equals(body), "whole");
  for (const [a, b] of [[0, 10], [65_530, 65_540], [1_000_000, 2_500_000], [body.length - 1, body.length - 1]] as const) {
    const r = await collect((await client.get("stockgp", "s.bin", { range: `bytes=${a}-${b}` })).body);
    t.true(r.equals(body.subarray(a, b + 1)), `range ${a}-${b}`);
  }
});

test("a small object (one chunk, no recorded sequence) is read with one plain Direct Get: no batch with a subscription of its own; whole and ranged reads are byte for byte", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("gpsmall");
  const body = randomBytes(4096);
  await client.put("gpsmall", "s", body);
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const store = { name: "gpsmall", stream: "OBJ_gpsmall" };
  const info = await statObject(jsm, store, "s");
  t.is(info.chunks, 1);
  t.is(info.chunkSeqs, undefined, "a small object's metadata records no chunk sequence (the case read here)");
  const watcher = await connectTo(t, url);
  const asked: string[] = [];
  watcher.subscribe("$JS.API.DIRECT.GET.>", { callback: (_e, m) => void asked.push(`${m.subject} ${m.string()}`) });
  await watcher.flush();
  t.true((await collect(readObject(jsm, store, info))).equals(body), "whole");
  t.true((await collect(readObject(jsm, store, info, { range: { start: 100, end: 199 } }))).equals(body.subarray(100, 200)), "ranged");
  await nc.flush();
  await watcher.flush();
  t.is(asked.length, 2, `one Direct Get per read: ${asked.join(" | ")}`);
  for (const a of asked) t.false(/"batch"|"max_bytes"/.test(a), `not a batch: ${a}`);
  // through the SDK (the actor answers a small GET inline) the bytes are the same
  t.true(Buffer.from(await client.getBytes("gpsmall", "s")).equals(body));
});

test("a reader that stops early leaves nothing behind and the next read is whole", async (t) => {
  const { client } = await startShoal(t);
  await client.createBucket("gpstop");
  const body = randomBytes(12 * MiB);
  await client.put("gpstop", "k", body);
  for (let i = 0; i < 3; i++) {
    const it = (await client.get("gpstop", "k")).body[Symbol.asyncIterator]();
    await it.next();
    await it.return?.(undefined);
  }
  t.true((await collect((await client.get("gpstop", "k")).body)).equals(body));
});

test("a slow HTTP reader holds the gateway's read back: the gateway fetches no more than its read-ahead beyond what the socket took, and the whole body arrives intact", async (t) => {
  const { startS3, S3_CREDS } = await import("../helpers/gateway.ts");
  const { S3Client, GetObjectCommand } = await import("@aws-sdk/client-s3");
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const { request } = await import("node:http");
  const { client, endpoint } = await startS3(t);
  await client.createBucket("slowread");
  const body = randomBytes(64 * MiB);
  await client.put("slowread", "big", body);
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
  t.teardown(() => s3.destroy());
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: "slowread", Key: "big" }), { expiresIn: 600 });
  const inBytes = () => client.nc.stats().inBytes;
  const before = inBytes();
  const got = await new Promise<Buffer>((resolve, reject) => {
    request(url, (res) => {
      const parts: Buffer[] = [];
      let received = 0;
      let checked = false;
      // take 4 MiB, then stop reading for a while: the gateway must stop fetching
      res.on("data", (c: Buffer) => {
        parts.push(c);
        received += c.byteLength;
        if (!checked && received >= 4 * MiB) {
          checked = true;
          res.pause();
          setTimeout(() => {
            const fetched = inBytes() - before;
            // what the socket took (kernel buffers on both sides) + the reader's read-ahead (16 chunks) + the piece being written
            t.true(fetched < received + 40 * MiB, `fetched ${fetched} bytes from NATS while the client had taken ${received}`);
            t.true(fetched < body.length - 8 * MiB, "the object was not read ahead whole");
            const first = inBytes();
            setTimeout(() => {
              t.true(inBytes() - first < 2 * MiB, "nothing more is fetched while the client does not read");
              res.resume();
            }, 1000);
          }, 2000);
        }
      });
      res.on("end", () => resolve(Buffer.concat(parts)));
      res.on("error", reject);
    }).on("error", reject).end();
  });
  t.true(got.equals(body), "the whole body, intact");
});

test("a batch answered out of place falls back to one Direct Get per chunk; a chunk that is nowhere fails the read", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("gpfall");
  const body = randomBytes(12 * MiB + 99);
  await client.put("gpfall", "k", body);
  const nc = await connectTo(t, url);
  const jsm = await jetstreamManager(nc);
  const store = { name: "gpfall", stream: "OBJ_gpfall" };
  const info = await statObject(jsm, store, "k");
  const seqs = info.chunkSeqs!;
  const cs = info.chunkSize;
  // the index skips chunk 3: a batch from chunk 2 answers chunk 3 where chunk 4 was asked for
  const skipping = { ...info, chunkSeqs: [...seqs.slice(0, 3), ...seqs.slice(4)], chunks: info.chunks - 1 };
  const want = Buffer.concat([body.subarray(0, 3 * cs), body.subarray(4 * cs, 9 * cs)]);
  const got = await collect(readObject(jsm, store, skipping, { range: { start: 0, end: 8 * cs - 1 } }));
  t.true(got.equals(want), "the chunks the index names, in its order");
  // an index naming a message that is not a chunk of this object: InternalError, not wrong bytes
  const metaSeq = (await jsm.streams.getMessage("OBJ_gpfall", { last_by_subj: metaSubject("gpfall", "k") }))!.seq;
  const broken = { ...info, chunkSeqs: [...seqs.slice(0, 5), metaSeq, ...seqs.slice(6)] };
  const e = await t.throwsAsync(collect(readObject(jsm, store, broken, { range: { start: 0, end: 8 * cs - 1 } })));
  t.is((e as { code?: string }).code, "InternalError");
});

test("a GET whose bytes do not match the version's CRC-32 (or, without one, its SHA-256) is cut short of its Content-Length: the gateway holds the last piece until the check", async (t) => {
  const { startS3, S3_CREDS } = await import("../helpers/gateway.ts");
  const { S3Client, GetObjectCommand } = await import("@aws-sdk/client-s3");
  const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
  const { request } = await import("node:http");
  const { headers: natsHeaders } = await import("@nats-io/nats-core");
  const { jetstream } = await import("@nats-io/jetstream");
  const { createHash } = await import("node:crypto");
  const { client, endpoint, url: natsUrl } = await startS3(t);
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
  t.teardown(() => s3.destroy());
  const get = async (bucket: string, key: string) => {
    const u = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 });
    return new Promise<{ status: number; length: number; got: number; complete: boolean }>((resolve) => {
      request(u, (res) => {
        let got = 0;
        const length = Number(res.headers["content-length"]);
        let ended = false;
        res.on("data", (c: Buffer) => (got += c.byteLength));
        res.on("end", () => {
          ended = true;
          resolve({ status: res.statusCode!, length, got, complete: res.complete });
        });
        res.on("error", () => undefined);
        res.on("close", () => ended || resolve({ status: res.statusCode!, length, got, complete: false }));
      }).on("error", () => resolve({ status: 0, length: -1, got: 0, complete: false })).end();
    });
  };
  // "many": whole chunks only (1 MiB − 1 KiB each), so the last piece is a full chunk the socket takes before the check
  for (const [key, size] of [["one", 200 * 1024], ["many", 4 * (MiB - 1024)]] as const) {
    await client.createBucket(`digest-${key}`);
    const body = randomBytes(size);
    await client.put(`digest-${key}`, key, body);
    const good = await get(`digest-${key}`, key);
    t.deepEqual(good, { status: 200, length: size, got: size, complete: true }, `${key}: the stored bytes read whole`);
    // the version's metadata is restamped: what a GET checks the same bytes against changes
    const nc = await connectTo(t, natsUrl);
    const jsm = await jetstreamManager(nc);
    const subj = metaSubject(`digest-${key}`, key);
    type Meta = { digest: string; nuid: string; headers: Record<string, string[]> };
    const m = await jsm.streams.getMessage(`OBJ_digest-${key}`, { last_by_subj: subj });
    const original = JSON.parse(new TextDecoder().decode(m!.data)) as Meta;
    const crc = original.headers["Shoal-Crc32"]?.[0] ?? "";
    t.is(crc, `${(zlib as unknown as { crc32: (b: Uint8Array) => number }).crc32(body).toString(16).padStart(8, "0")}:${original.nuid}`, `${key}: the CRC-32 of the bytes is recorded, tied to their nuid`);
    const otherDigest = `SHA-256=${createHash("sha256").update("something else").digest("base64url")}=`;
    const restamp = async (change: (meta: Meta) => void) => {
      const meta = structuredClone(original);
      change(meta);
      const h = natsHeaders();
      h.set("Nats-Rollup", "sub");
      await jetstream(nc).publish(subj, JSON.stringify(meta), { headers: h });
      return get(`digest-${key}`, key);
    };
    const variants: Array<[string, (meta: Meta) => void, boolean]> = [
      ["a wrong CRC-32", (meta) => (meta.headers["Shoal-Crc32"] = [`${crc.startsWith("0") ? "1" : "0"}${crc.slice(1)}`]), false],
      ["no CRC-32 and a wrong SHA-256 (as stock tools write)", (meta) => {
        delete meta.headers["Shoal-Crc32"];
        meta.digest = otherDigest;
      }, false],
      ["a CRC-32 of other bytes (another nuid) and a wrong SHA-256", (meta) => {
        meta.headers["Shoal-Crc32"] = [`${crc.slice(0, 9)}${"A".repeat(22)}`];
        meta.digest = otherDigest;
      }, false],
      // the CRC-32 is what Shoal checks: the same bytes read whole although the SHA-256 (stock readers' check) is wrong
      ["the right CRC-32 and a wrong SHA-256", (meta) => (meta.digest = otherDigest), true],
    ];
    for (const [what, change, ok] of variants) {
      const r = await restamp(change);
      if (ok) {
        t.deepEqual(r, { status: 200, length: size, got: size, complete: true }, `${key}, ${what}: read whole`);
        continue;
      }
      // a one-chunk object is checked before the answer starts (500); a streamed one only after its last chunk
      t.false(r.status === 200 && r.complete && r.got === r.length, `${key}, ${what}: the client never gets the whole promised body (${JSON.stringify(r)})`);
      if (key === "many") {
        t.is(r.status, 200, `${key}, ${what}: the mismatch of a streamed body shows only at its end`);
        t.true(r.got < size, `${key}, ${what}: the last piece was held back`);
      }
    }
  }
});
