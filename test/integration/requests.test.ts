/**
 * src/client/requests.ts: an answered request's `cancel()` builds its
 * discarded "cancelled" error without a stack trace; everything a caller
 * sees of requests is unchanged — answers, errors with their stacks, no
 * responders, timeouts — and the stack trace limit is back afterwards.
 */
import test from "ava";
import { RequestOne, RequestError, TimeoutError } from "@nats-io/nats-core/internal";
import { NoRespondersError } from "@nats-io/nats-core";
import { connectTo, startServer } from "../helpers/nats.ts";
import { installRequestPaths } from "../../src/client/requests.ts";

/** A request on a stand-in mux, cancelled the way nats.js cancels an answered one. */
async function cancelled(err?: Error): Promise<unknown> {
  const r = new RequestOne({ cancel: () => undefined } as never, "x", { timeout: 60_000 }, false);
  const p = r.deferred.then(() => undefined, (e: unknown) => e);
  r.cancel(err);
  return p;
}

test("an answered request's cancel builds its error without stack frames; an error passed to cancel is kept as it is; the limit is restored", async (t) => {
  t.deepEqual(installRequestPaths(), { stacklessCancel: true }, "nats.js has the shape requests.ts patches");
  t.deepEqual(installRequestPaths(), { stacklessCancel: true }, "a second install is harmless");
  const limit = Error.stackTraceLimit;
  const e = await cancelled();
  t.true(e instanceof RequestError);
  t.is((e as Error).message, "cancelled");
  t.false(/\n\s+at /.test((e as Error).stack ?? ""), `no stack frames: ${(e as Error).stack}`);
  t.is(Error.stackTraceLimit, limit, "the stack trace limit is back");
  const mine = new Error("mine");
  t.is(await cancelled(mine), mine, "an error given to cancel is the rejection");
  t.true(/\n\s+at /.test(new Error("later").stack ?? ""), "errors made afterwards have their stacks");
});

test("requests through a patched client: answers arrive, a missing responder and a timeout reject as before", async (t) => {
  installRequestPaths();
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  nc.subscribe("echo", { callback: (_e, m) => void m.respond(m.data) });
  await nc.flush();
  for (let i = 0; i < 100; i++) t.is((await nc.request("echo", `m${i}`, { timeout: 5000 })).string(), `m${i}`);
  const none = await t.throwsAsync(nc.request("nobody.here", "", { timeout: 5000 }));
  t.true(none instanceof NoRespondersError || (none as Error & { cause?: unknown }).cause instanceof NoRespondersError, `no responders: ${String(none)}`);
  nc.subscribe("silent", { callback: () => undefined });
  await nc.flush();
  const slow = await t.throwsAsync(nc.request("silent", "", { timeout: 200 }));
  t.true(slow instanceof TimeoutError, `timeout: ${String(slow)}`);
});
