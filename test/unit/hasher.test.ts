import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { AdaptiveHasher, OFFLOAD_MIN } from "../../src/store/hasher.ts";

const want = (b: Buffer) => ({ md5hex: createHash("md5").update(b).digest("hex"), sha256: createHash("sha256").update(b).digest("base64") .replaceAll("+", "-").replaceAll("/", "_") });

async function hashInPieces(b: Buffer, piece: number, md5 = true) {
  const h = new AdaptiveHasher(md5);
  for (let o = 0; o < b.length; o += piece) h.update(b.subarray(o, o + piece));
  return h.digest();
}

for (const size of [0, 1, OFFLOAD_MIN - 1, OFFLOAD_MIN, 2 * OFFLOAD_MIN + 12345]) {
  test(`MD5 and SHA-256 of ${size} bytes match node:crypto, inline or on the worker`, async (t) => {
    const b = randomBytes(size);
    t.deepEqual(await hashInPieces(b, 333_333), want(b));
  });
}

test("without the MD5 (a multipart object's copy), the SHA-256 still matches, inline and on the worker, next to a session that has both", async (t) => {
  for (const size of [10, 2 * OFFLOAD_MIN + 1]) {
    const b = randomBytes(size);
    const both = new AdaptiveHasher();
    for (let o = 0; o < b.length; o += 1 << 20) both.update(b.subarray(o, o + (1 << 20)));
    t.deepEqual(await hashInPieces(b, 1 << 20, false), { md5hex: "", sha256: want(b).sha256 }, `${size} bytes`);
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
