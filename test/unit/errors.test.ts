import test from "ava";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { ERRORS, ShoalError, errorToWire, errorFromWire, toShoalError, type ErrorCode } from "../../src/errors/index.ts";

const codes = Object.keys(ERRORS) as ErrorCode[];

test("every error code is documented in docs/errors.md with the table's values", (t) => {
  const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
  for (const code of codes) {
    const row = doc.split("\n").find((l) => l.startsWith(`| \`${code}\` |`));
    if (!row) {
      t.fail(`docs/errors.md has no row for ${code}`);
      continue;
    }
    const cells = row.split("|").map((c) => c.trim());
    const spec = ERRORS[code];
    t.is(cells[2], spec.s3, `${code}: S3 code`);
    t.is(cells[3], String(spec.http), `${code}: HTTP status`);
    t.is(cells[4], String(spec.nats), `${code}: NATS code`);
  }
});

test("every error code round-trips the wire (headers + body)", (t) => {
  t.notThrows(() => fc.assert(
    fc.property(
      fc.constantFrom(...codes),
      fc.string({ maxLength: 200 }),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxKeys: 4 }),
      (code, message, detail) => {
        const err = new ShoalError(code, message || undefined, { detail });
        const wire = errorToWire(err);
        const back = errorFromWire((h) => wire.headers[h], wire.body);
        return back instanceof ShoalError && back.code === code && back.message === err.message && JSON.stringify(back.detail ?? {}) === JSON.stringify(err.detail ?? {});
      },
    ),
  ));
});

test("a reply without error headers is not an error", (t) => {
  t.is(errorFromWire(() => undefined, "{}"), undefined);
});

test("unknown failures become InternalError with a generic message; detail stays as cause", (t) => {
  const secret = new Error("ECONNREFUSED 127.0.0.1:1234 /var/lib/secret");
  const e = toShoalError(secret);
  t.is(e.code, "InternalError");
  t.false(e.message.includes("secret"));
  t.is(e.cause, secret);
  t.false(errorToWire(e).body.includes("secret"));
});

test("timeouts and no-responders become retryable 503s", (t) => {
  const timeout = Object.assign(new Error("timeout"), { name: "TimeoutError" });
  const noResp = Object.assign(new Error("no responders: shoal.v1.x"), { name: "NoRespondersError" });
  t.is(toShoalError(timeout).code, "Timeout");
  t.true(toShoalError(timeout).retryable);
  t.is(toShoalError(noResp).code, "ServiceUnavailable");
  t.is(toShoalError(noResp).spec.http, 503);
  t.is(toShoalError(new Error("JetStream system temporarily unavailable")).code, "ServiceUnavailable");
});
