/**
 * src/client/payloads.ts: with the NATS parser's payload buffers presized,
 * a message that spans many socket reads arrives in one buffer of its own
 * size (not the doubling buffer nats.js grows, which left a 1 MiB payload in
 * a ~2 MiB buffer); and every message's bytes, headers and order
 * are unchanged — large and small, with and without headers, interleaved on
 * one connection, published in one tick and one by one.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { headers as natsHeaders, type Msg } from "@nats-io/nats-core";
import { connectTo, startServer } from "../helpers/nats.ts";
import { installPayloadPaths } from "../../src/client/payloads.ts";

const KiB = 1024;

for (const burst of [true, false]) {
  test(`large payloads arrive in a buffer of their own size, with the same bytes in the same order; small ones and headers are untouched (${burst ? "published in one tick" : "one by one"})`, async (t) => {
    t.deepEqual(installPayloadPaths(), { receive: true }, "nats.js has the shape payloads.ts patches");
    t.deepEqual(installPayloadPaths(), { receive: true }, "a second install is harmless");
    const srv = await startServer(t);
    const nc = await connectTo(t, srv.url);
    const sizes = [0, 1, 100, 64 * KiB - 1, 64 * KiB + 1, 300 * KiB, 1023 * KiB, 5, 1000 * KiB, 2 * KiB, 17 * KiB, 900 * KiB];
    const sent = sizes.map((n) => randomBytes(n));
    const got: Msg[] = [];
    const done = new Promise<void>((resolve) => {
      nc.subscribe("rx.>", {
        callback: (_e, m) => {
          got.push(m);
          if (got.length === sent.length) resolve();
        },
      });
    });
    await nc.flush();
    for (let i = 0; i < sent.length; i++) {
      const h = natsHeaders();
      h.set("X-Index", String(i));
      // every other message with headers (HMSG), the others plain (MSG)
      nc.publish(`rx.${i}`, sent[i]!, i % 2 ? { headers: h } : {});
      if (!burst) await nc.flush();
    }
    await done;
    for (let i = 0; i < sent.length; i++) {
      const m = got[i]!;
      t.is(m.subject, `rx.${i}`);
      t.deepEqual(Buffer.from(m.data), sent[i], `message ${i} (${sizes[i]} bytes) arrived intact`);
      if (i % 2) t.is(m.headers?.get("X-Index"), String(i));
      else t.is(m.headers, undefined);
      // a payload larger than one socket read sits in a buffer of its own size (+ its headers), not a doubled one
      if (sizes[i]! > 128 * KiB) t.true(m.data.buffer.byteLength <= sizes[i]! + 256, `message ${i}: ${sizes[i]} bytes in a buffer of ${m.data.buffer.byteLength}`);
    }
  });
}
