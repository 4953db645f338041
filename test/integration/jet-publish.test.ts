/**
 * src/jet publish against nats-server 2.15: transient failures (no stream
 * answering yet) are retried until the deadline; refusals are not retried;
 * a retry after a landed attempt is reported as the duplicate it is.
 */
import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectTo, startServer } from "../helpers/nats.ts";
import { publish, JS_CODES } from "../../src/jet/index.ts";
import { AckClock, MIN_ATTEMPT_MS, ackClock } from "../../src/jet/publish.ts";
import { ShoalError } from "../../src/errors/index.ts";

test("no responders is retried until a stream answers; a refusal is not retried", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  let retries = 0;
  let created: Promise<unknown> | undefined;
  const ack = await publish(js, "late.x", "v", {
    msgId: "late-1",
    attemptMs: 1000,
    deadlineMs: 20_000,
    // the stream appears only after the first failed attempt: the publish must ride through
    onRetry: () => {
      retries++;
      created ??= jsm.streams.add({ name: "LATE", subjects: ["late.>"] });
    },
  });
  await created;
  t.true(retries >= 1);
  t.is(ack.stream, "LATE");
  t.is(ack.seq, 1);

  let refusedRetries = 0;
  const e = await t.throwsAsync(publish(js, "late.y", "v", { msgId: "late-2", ttlMs: 5000, attemptMs: 1000, deadlineMs: 10_000, onRetry: () => refusedRetries++ }));
  t.true(e instanceof ShoalError);
  t.is((e as ShoalError).detail?.["jsCode"], JS_CODES.MessageTtlDisabled);
  t.is(refusedRetries, 0);

  const cas = await t.throwsAsync(publish(js, "late.x", "v2", { msgId: "late-3", expectLastSubjectSeq: 0, attemptMs: 1000, deadlineMs: 10_000, onRetry: () => refusedRetries++ }));
  t.is((cas as ShoalError).code, "Conflict");
  t.is(refusedRetries, 0);
});

test("a deadline with nothing answering ends in a retryable ServiceUnavailable/Timeout", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const t0 = Date.now();
  const e = await t.throwsAsync(publish(jetstream(nc), "nowhere.x", "v", { msgId: "n", attemptMs: 300, deadlineMs: 1500 }));
  t.true(e instanceof ShoalError);
  t.true((e as ShoalError).retryable);
  t.true(Date.now() - t0 < 10_000);
});

test("a small message's attempt waits as long as acks have been taking (at least 250 ms), not the caller's whole attempt; slow acks lengthen it", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "ACKS", subjects: ["acks.>"] });
  for (let i = 0; i < 20; i++) await publish(js, `acks.${i}`, "v", { msgId: `warm-${i}`, attemptMs: 1000, deadlineMs: 10_000 });
  t.is(ackClock(js).attemptMs(1000), MIN_ATTEMPT_MS, "fast acks: the floor");

  // a stand-in for a stream in an election: the first attempt goes unanswered, the retry is acked
  const seen: number[] = [];
  const sub = nc.subscribe("standin.x", {
    callback: (_e, m) => {
      seen.push(performance.now());
      if (seen.length > 1) m.respond(JSON.stringify({ stream: "STANDIN", seq: seen.length }));
    },
  });
  t.teardown(() => sub.unsubscribe());
  await publish(js, "standin.x", "v", { msgId: "s-1", attemptMs: 1000, deadlineMs: 10_000 });
  const gap = seen[1]! - seen[0]!;
  t.log(`retried ${gap.toFixed(0)} ms after the unanswered attempt`);
  // measured between the stand-in's receipts (the first one arrives a little after its attempt's timer started)
  t.true(gap >= MIN_ATTEMPT_MS - 50 && gap < 800, `retried after ${gap} ms`);

  // after slow acks, an attempt waits longer (a busy server is not sent every message twice)
  for (let i = 0; i < 8; i++) ackClock(js).observe(700);
  t.true(ackClock(js).attemptMs(5000) >= 700);
  t.is(ackClock(js).attemptMs(600), 600, "never past the caller's attempt");
  t.is(new AckClock().attemptMs(1000), 1000, "no ack seen yet: the caller's attempt");
});
