/**
 * Dispatch is total (issue 14, defect 1): no subject, payload or header can
 * end an actor or leave a request unanswered.
 */
import test from "ava";
import { headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { errorFromWire, ShoalError } from "../../src/errors/index.ts";
import { startShoal } from "../helpers/actors.ts";
import { connectTo } from "../helpers/nats.ts";

function wireError(m: Msg): ShoalError | undefined {
  return errorFromWire((h) => m.headers?.get(h) || undefined, m.string());
}

async function alive(t: import("ava").ExecutionContext, nc: NatsConnection, bucket: string): Promise<void> {
  const m = await nc.request(`shoal.v1.obj.list.${bucket}`, JSON.stringify({ prefix: "" }), { timeout: 5000 });
  t.is(wireError(m), undefined, "the actor still serves");
}

test("a payload whose error text holds a newline gets a typed error, and the actor lives (the `evil\\nfield` crash)", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("evil");
  const nc = await connectTo(t, url);
  const m = await nc.request("shoal.v1.obj.list.evil", JSON.stringify({ prefix: "a", "evil\nfield": 1 }), { timeout: 5000 });
  const err = wireError(m);
  t.is(err?.code, "MalformedPayload");
  const text = m.headers?.get("Nats-Service-Error") ?? "";
  t.false(/[\r\n\u0000-\u001f\u007f]/.test(text), JSON.stringify(text));
  await alive(t, nc, "evil");
});

test("control characters and CR/LF anywhere in a request's fields, keys and headers get typed errors", async (t) => {
  const { url, client } = await startShoal(t);
  await client.createBucket("evil");
  const nc = await connectTo(t, url);
  const bodies = [
    { key: "a\u0000\r\nb" },
    { key: "x", "\r\nSet: y": 1 },
    { key: "x".repeat(5000) + "\n" },
    { key: 42 },
    { key: "k", range: "bytes=\n0-1" },
    { key: "k", ifModifiedSince: "\r\n" },
  ];
  for (const subject of ["shoal.v1.obj.get.evil", "shoal.v1.obj.head.evil", "shoal.v1.obj.delete.evil", "shoal.v1.obj.copy.evil", "shoal.v1.mpu.create.evil"]) {
    for (const b of bodies) {
      const m = await nc.request(subject, JSON.stringify(b), { timeout: 5000 });
      t.truthy(wireError(m), `${subject} ${JSON.stringify(b).slice(0, 60)}: an error reply`);
      const text = m.headers?.get("Nats-Service-Error") ?? "";
      t.false(/[\r\n\u0000-\u001f\u007f]/.test(text), JSON.stringify(text));
      t.true(text.length <= 512);
    }
  }
  // a put whose key header holds non-UTF-8 bytes / control characters
  const h = natsHeaders();
  h.set("Shoal-Key", "a\u0001b");
  const put = await nc.request("shoal.v1.obj.put.evil", "x", { headers: h, timeout: 5000 });
  t.truthy(wireError(put));
  await alive(t, nc, "evil");
});
