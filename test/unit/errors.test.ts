import test from "ava";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { ERRORS, MAX_HEADER_TEXT, ShoalError, errorToWire, errorFromWire, headerSafe, toShoalError, type ErrorCode } from "../../src/errors/index.ts";
import { JS_CODE, isPeerOffline, isWrongLastSequence } from "../../src/errors/nats.ts";
import { errors as natsErrors, headers as natsHeaders } from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";
import { jserrors } from "@nats-io/jetstream/internal";

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

test("timeouts and no-responders become retryable 503s, told apart by the client's error classes and API codes", (t) => {
  const timeout = new natsErrors.TimeoutError();
  const noResp = new natsErrors.RequestError("no responders: 'shoal.v1.x'", { cause: new natsErrors.NoRespondersError("shoal.v1.x") });
  t.is(toShoalError(timeout).code, "Timeout");
  t.true(toShoalError(timeout).retryable);
  t.is(toShoalError(noResp).code, "ServiceUnavailable");
  t.is(toShoalError(noResp).spec.http, 503);
  t.is(toShoalError(new JetStreamApiError({ code: 503, err_code: JS_CODE.ClusterNotAvailable, description: "JetStream system temporarily unavailable" })).code, "ServiceUnavailable");
  t.is(toShoalError(new jserrors.JetStreamNotEnabled("jetstream is not enabled")).code, "ServiceUnavailable");
  t.is(toShoalError(new natsErrors.ClosedConnectionError()).code, "ServiceUnavailable");
  // text alone classifies nothing: an Error that merely says so is an internal error
  t.is(toShoalError(new Error("JetStream system temporarily unavailable")).code, "InternalError");
  t.is(toShoalError(Object.assign(new Error("timeout"), { name: "TimeoutError" })).code, "InternalError");
  t.true(isWrongLastSequence(new JetStreamApiError({ code: 400, err_code: JS_CODE.WrongLastSequence, description: "wrong last sequence: 7" })));
  t.false(isWrongLastSequence(new Error("wrong last sequence: 7")));
  t.true(isPeerOffline(new JetStreamApiError({ code: 400, err_code: JS_CODE.NoSuitablePeers, description: "no suitable peers for placement, peer offline" })));
  t.false(isPeerOffline(new JetStreamApiError({ code: 400, err_code: JS_CODE.NoSuitablePeers, description: "no suitable peers for placement" })));
  t.false(isPeerOffline(new Error("no suitable peers for placement, peer offline")));
});

test("error text in a header is header-safe: no control characters, bounded length, well-formed", (t) => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 2000 }), (text) => {
      const wire = errorToWire(new ShoalError("MalformedPayload", text));
      const h = wire.headers["Nats-Service-Error"]!;
      t.false(/[\u0000-\u001f\u007f-\u009f]/.test(h));
      t.true(h.length <= MAX_HEADER_TEXT);
      t.true(h.isWellFormed());
      // the NATS client accepts it as a header value
      t.notThrows(() => natsHeaders().set("Nats-Service-Error", h));
      // the body keeps the full text
      t.is((JSON.parse(wire.body) as { error: { message: string } }).error.message, text);
    }),
    { numRuns: 300 },
  );
  t.is(headerSafe('unknown field "evil\nfield"'), 'unknown field "evil\\u000afield"');
});
