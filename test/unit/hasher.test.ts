import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import * as zlib from "node:zlib";
import { AdaptiveHasher, OFFLOAD_MIN, digestOf } from "../../src/store/hasher.ts";
import { crc32, crc32ByTable, crc32c, crc32cByTable, crcHex, crcImplementation } from "../../src/runtime/crc32.ts";

// zlib's own CRC-32 as the reference (Node ≥ 20.15)
const zcrc = (zlib as unknown as { crc32: (b: Uint8Array) => number }).crc32;
const want = (b: Buffer) => ({
  md5hex: createHash("md5").update(b).digest("hex"),
  sha256: createHash("sha256").update(b).digest("base64").replaceAll("+", "-").replaceAll("/", "_"),
  crc32: crcHex(zcrc(b)),
});

test("CRC-32 and CRC-32C: the check values, and continued over pieces as over the whole", (t) => {
  const nine = Buffer.from("123456789");
  t.is(crcHex(crc32(nine)), "cbf43926");
  t.is(crcHex(crc32c(nine)), "e3069283");
  const b = randomBytes(100_003);
  t.is(crc32(b.subarray(40_000), crc32(b.subarray(0, 40_000))), crc32(b));
  t.is(crc32c(b.subarray(7), crc32c(b.subarray(0, 7))), crc32c(b));
  t.is(crcHex(crc32(new Uint8Array(0))), "00000000");
  t.is(crc32ByTable(b.subarray(5), crc32ByTable(b.subarray(0, 5))), zcrc(b), "the table (Node without zlib.crc32) agrees with zlib");
});

test("the SIMD CRCs (@node-rs/crc32) load on linux-x64 and agree with the tables, over pieces of every alignment and a plain Uint8Array", (t) => {
  if (process.platform === "linux" && process.arch === "x64") t.is(crcImplementation, "simd");
  const b = randomBytes(1_000_003);
  for (const cut of [0, 1, 3, 8, 15, 64, 4095, 999_999, 1_000_003]) {
    t.is(crc32(b.subarray(cut), crc32(b.subarray(0, cut))), crc32ByTable(b), `CRC-32 cut at ${cut}`);
    t.is(crc32c(b.subarray(cut), crc32c(b.subarray(0, cut))), crc32cByTable(b), `CRC-32C cut at ${cut}`);
  }
  const u8 = new Uint8Array(b.buffer, b.byteOffset + 3, 5000);
  t.is(crc32(u8), crc32ByTable(u8));
  t.is(crc32c(u8, 0x12345678), crc32cByTable(u8, 0x12345678));
});

async function hashInPieces(b: Buffer, piece: number, md5 = true) {
  const h = new AdaptiveHasher(md5);
  for (let o = 0; o < b.length; o += piece) h.update(b.subarray(o, o + piece));
  return h.digest();
}

for (const size of [0, 1, OFFLOAD_MIN - 1, OFFLOAD_MIN, 2 * OFFLOAD_MIN + 12345]) {
  test(`MD5, SHA-256 and CRC-32 of ${size} bytes match node:crypto, inline or on the worker`, async (t) => {
    const b = randomBytes(size);
    t.deepEqual(await hashInPieces(b, 333_333), want(b));
  });
}

test("without the MD5 (a multipart object's copy), the SHA-256 still matches, inline and on the worker, next to a session that has both", async (t) => {
  for (const size of [10, 2 * OFFLOAD_MIN + 1]) {
    const b = randomBytes(size);
    const both = new AdaptiveHasher();
    for (let o = 0; o < b.length; o += 1 << 20) both.update(b.subarray(o, o + (1 << 20)));
    t.deepEqual(await hashInPieces(b, 1 << 20, false), { md5hex: "", sha256: want(b).sha256, crc32: want(b).crc32 }, `${size} bytes`);
    t.deepEqual(await both.digest(), want(b));
  }
});

test("concurrent sessions on the worker do not mix, and a discarded one does not disturb the others", async (t) => {
  const bodies = [randomBytes(OFFLOAD_MIN + 1), randomBytes(OFFLOAD_MIN * 2), randomBytes(OFFLOAD_MIN + 7)];
  const hashers = bodies.map(() => new AdaptiveHasher());
  const dropped = new AdaptiveHasher();
  for (let o = 0; o < OFFLOAD_MIN * 2; o += 1 << 20) {
    bodies.forEach((b, i) => o < b.length && hashers[i]!.update(b.subarray(o, o + (1 << 20))));
    dropped.update(randomBytes(1 << 20));
  }
  dropped.discard();
  const got = await Promise.all(hashers.map((h) => h.digest()));
  t.deepEqual(got, bodies.map(want));
});

test("caughtUp bounds what waits to be hashed: it resolves once the worker has hashed all but the given bytes", async (t) => {
  const h = new AdaptiveHasher();
  const b = randomBytes(6 * OFFLOAD_MIN);
  for (let o = 0; o < b.length; o += 1 << 20) h.update(b.subarray(o, o + (1 << 20)));
  await h.caughtUp(0);
  t.deepEqual(await h.digest(), want(b));
});

test("digestOf: the one-shot digest equals createHash's, for every size a small put has", (t) => {
  for (const n of [0, 1, 4096, 512 * 1024]) {
    const b = randomBytes(n);
    t.is(digestOf("md5", b, "hex"), createHash("md5").update(b).digest("hex"), `md5 of ${n}`);
    t.is(digestOf("sha256", b, "base64url"), createHash("sha256").update(b).digest("base64url"), `sha256 of ${n}`);
  }
});
