import test from "ava";
import fc from "fast-check";
import { bucketNameProblem } from "../../src/subjects/v1.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { bucketToken, bucketFromToken, objectStoreName, objectSubject, heartbeatSubject, eventSubject, alertSubject, controlSubject, assertToken } from "../../src/subjects/index.ts";

// S3 bucket names: 3-63 chars of [a-z0-9.-], starting and ending with a letter or digit, no "..".
const s3Bucket = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/).filter((s) => bucketNameProblem(s) === undefined);

test("bucket → token is injective and reversible", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(s3Bucket, s3Bucket, (a, b) => {
        if (a !== b && bucketToken(a) === bucketToken(b)) return false;
        return bucketFromToken(bucketToken(a)) === a && !bucketToken(a).includes(".");
      }),
    ),
  );
});

test("bucket → token refuses every invalid name, so no invalid name reaches a valid bucket's subjects (a_b is not a.b)", (t) => {
  t.throws(() => bucketToken("a_b"), { instanceOf: ShoalError, code: "InvalidBucketName" } as never);
  t.throws(() => objectSubject("get", "a_b"), { instanceOf: ShoalError, code: "InvalidBucketName" } as never);
  t.throws(() => bucketFromToken("a__b"), { instanceOf: ShoalError, code: "InvalidBucketName" } as never);
  t.is(bucketFromToken("a_b"), "a.b");
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(..."abz09._-A*> \n"), minLength: 0, maxLength: 70 }), (name) => {
        const valid = bucketNameProblem(name) === undefined;
        let token: string | undefined;
        try {
          token = bucketToken(name);
        } catch (e) {
          return !valid && e instanceof ShoalError && e.code === "InvalidBucketName";
        }
        // a name that maps is valid, and its token maps back to it alone
        return valid && bucketFromToken(token) === name;
      }),
      { numRuns: 2000 },
    ),
  );
});

test("shard object-store names never collide with another bucket's name", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(s3Bucket, s3Bucket, fc.integer({ min: 1, max: 999 }), (a, b, shard) => objectStoreName(a, shard) !== objectStoreName(b)),
    ),
  );
});

test("subjects have the documented shapes", (t) => {
  t.is(objectSubject("get", "my.bucket"), "shoal.v1.obj.get.my_bucket");
  t.is(heartbeatSubject("storage", "abc"), "shoal.hb.storage.abc");
  t.is(eventSubject("bk1", "created"), "shoal.events.bk1.created");
  t.is(eventSubject(), "shoal.events.*.*");
  t.is(alertSubject("critical", "server-down"), "shoal.alerts.critical.server-down");
  t.is(controlSubject("rebalancer", "repair"), "shoal.ctl.rebalancer.repair");
});

test("tokens with wildcards, dots or spaces are refused", (t) => {
  for (const bad of ["", "a.b", "*", ">", "a b", "x\ny"]) t.throws(() => assertToken("t", bad), { instanceOf: TypeError });
  t.throws(() => heartbeatSubject("storage", "a.b"));
});

// ADR-20 (and the Go client) encode the key's UTF-8 bytes. @nats-io/obj uses
// btoa(), which agrees for ASCII keys (and throws on others), so the
// comparison with it is over ASCII; the round trip is over all of Unicode.
test("meta subjects match @nats-io/obj's base64url-padded encoding for ASCII keys and invert for any key", async (t) => {
  const { metaSubject, keyFromMetaSubject } = await import("../../src/subjects/index.ts");
  const { Base64UrlPaddedCodec } = await import("../../node_modules/@nats-io/obj/lib/base64.js");
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 300 }), fc.string({ minLength: 1, maxLength: 300, unit: "grapheme" }), (ascii, any) => {
        const s = metaSubject("b", ascii);
        const u = metaSubject("b", any);
        return s === `$O.b.M.${Base64UrlPaddedCodec.encode(ascii)}` && keyFromMetaSubject(s) === ascii && keyFromMetaSubject(u) === any && u === `$O.b.M.${Buffer.from(any).toString("base64").replaceAll("+", "-").replaceAll("/", "_")}`;
      }),
    ),
  );
});
