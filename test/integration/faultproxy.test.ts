import test from "ava";
import { createServer, connect, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExecutionContext } from "ava";
import { startProxy } from "../helpers/faultproxy.ts";

/** A loopback echo server on a free port, closed in teardown. */
async function echoServer(t: ExecutionContext): Promise<number> {
  const sockets = new Set<Socket>();
  const srv = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return (srv.address() as { port: number }).port;
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

/** Sends `text` and resolves with what comes back within `ms`, or undefined. */
async function roundTrip(s: Socket, text: string, ms = 1000): Promise<{ reply: string | undefined; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let got = "";
    const onData = (b: Buffer) => {
      got += b.toString();
      if (got.length >= text.length) done(got);
    };
    const timer = setTimeout(() => done(undefined), ms);
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      s.off("data", onData);
      resolve({ reply: v, ms: Date.now() - t0 });
    };
    s.on("data", onData);
    s.write(text);
  });
}

test("pass-through forwards both ways on a free loopback port", async (t) => {
  const port = await echoServer(t);
  const p = await startProxy(t, port);
  t.true(p.port > 0 && p.port !== port);
  const s = await dial(p.port);
  t.teardown(() => s.destroy());
  t.is((await roundTrip(s, "hello")).reply, "hello");
  t.is(p.openConnections, 1);
});

test("cut closes live connections and refuses new ones until healed", async (t) => {
  const port = await echoServer(t);
  const p = await startProxy(t, port);
  const s = await dial(p.port);
  t.teardown(() => s.destroy());
  const closed = new Promise<void>((r) => s.once("close", () => r()));
  s.on("error", () => undefined);
  p.cut();
  await closed;
  t.is(p.openConnections, 0);
  // a new connection is accepted by the kernel, then reset at once
  const s2 = await dial(p.port).catch(() => undefined);
  if (s2) {
    s2.on("error", () => undefined);
    await new Promise<void>((r) => s2.once("close", () => r()));
    t.true(s2.destroyed);
  }
  p.heal();
  const s3 = await dial(p.port);
  t.teardown(() => s3.destroy());
  t.is((await roundTrip(s3, "back")).reply, "back");
});

test("delay adds latency both ways and keeps order", async (t) => {
  const port = await echoServer(t);
  const p = await startProxy(t, port);
  const s = await dial(p.port);
  t.teardown(() => s.destroy());
  t.true((await roundTrip(s, "warm")).ms < 150);
  p.delay(150);
  const r = await roundTrip(s, "0123456789", 3000);
  t.is(r.reply, "0123456789");
  t.true(r.ms >= 290, `round trip took ${r.ms} ms, expected >= 2 × 150`);
  p.heal();
  t.true((await roundTrip(s, "fast")).ms < 150);
});

test("blackhole keeps the connection but drops every byte; heal restores", async (t) => {
  const port = await echoServer(t);
  const p = await startProxy(t, port);
  const s = await dial(p.port);
  t.teardown(() => s.destroy());
  p.blackhole();
  t.is((await roundTrip(s, "lost", 300)).reply, undefined);
  t.false(s.destroyed);
  t.is(p.openConnections, 1);
  p.heal();
  await sleep(10);
  t.is((await roundTrip(s, "found")).reply, "found");
});

test("throttle limits each direction to the given rate and keeps order", async (t) => {
  const port = await echoServer(t);
  const p = await startProxy(t, port);
  const s = await dial(p.port);
  t.teardown(() => s.destroy());
  p.throttle(200_000);
  const text = Array.from({ length: 4000 }, (_, i) => `${i % 10}`).join("").repeat(10); // 40 000 bytes
  const r = await roundTrip(s, text, 5000);
  t.is(r.reply, text);
  // 40 kB one way and back at 200 kB/s: at least ~0.2 s each way
  t.true(r.ms >= 350, `took ${r.ms} ms`);
  p.heal();
  t.true((await roundTrip(s, "fast")).ms < 300);
});
