/**
 * src/jet/errors: failures are classified by error class and
 * JetStreamApiError.code, never by message text.
 */
import test from "ava";
import { TimeoutError, NoRespondersError, RequestError } from "@nats-io/nats-core";
import { JetStreamApiError } from "@nats-io/jetstream";
import { classify, toJetError, JS_CODES, ttlValue } from "../../src/jet/index.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { apiCode } from "../../src/store/writer.ts";

const api = (err_code: number, description = "any text") => new JetStreamApiError({ code: 400, err_code, description });

test("transient: timeouts, no responders, cluster unavailable", (t) => {
  t.is(classify(new TimeoutError()), "transient");
  t.is(classify(new NoRespondersError("x")), "transient");
  t.is(classify(new RequestError("x", { cause: new NoRespondersError("x") })), "transient");
  t.is(classify(api(JS_CODES.ClusterNotAvailable)), "transient");
  t.is(classify(api(10158, "duplicate message id is in process")), "transient", "an earlier attempt still being proposed: a retry gets its duplicate ack");
  t.is(classify(new ShoalError("ServiceUnavailable")), "transient");
});

test("by code, whatever the message says", (t) => {
  t.is(classify(api(JS_CODES.StreamWrongLastSequence, "timeout no responders")), "conflict");
  t.is(classify(api(JS_CODES.NoMessageFound)), "notFound");
  t.is(classify(api(10174, "wrong last sequence")), "refused");
  t.is(classify(new Error("wrong last sequence: 5")), "unknown");
});

test("toJetError keeps the server's code and maps to the error table", (t) => {
  const e = toJetError(api(JS_CODES.StreamWrongLastSequence), "publish");
  t.is(e.code, "Conflict");
  t.deepEqual(e.detail, { jet: "conflict", jsCode: 10071 });
  t.is(toJetError(new TimeoutError(), "x").code, "Timeout");
  t.is(toJetError(api(10201), "x").code, "InternalError");
  const s = new ShoalError("NoSuchKey");
  t.is(toJetError(s, "x"), s);
});

test("TTL header values", (t) => {
  t.is(ttlValue(1000), "1s");
  t.is(ttlValue(90_500), "91s");
  t.is(ttlValue("never"), "never");
  t.throws(() => ttlValue(0), { instanceOf: RangeError });
  t.throws(() => ttlValue(Number.NaN), { instanceOf: RangeError });
});

test("a publish that gave up on \"duplicate message id is in process\" is no refusal: the writer treats its outcome as unknown", (t) => {
  t.is(apiCode(toJetError(api(10158, "duplicate message id is in process"), "publish to x")), undefined);
  t.is(apiCode(toJetError(api(JS_CODES.StreamWrongLastSequence), "publish to x")), 10071);
  t.is(apiCode(toJetError(api(10201), "publish to x")), 10201);
});
