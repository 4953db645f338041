import { NatsServer } from "../src/engine/server.ts";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { mkdtempSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
const s = new NatsServer({ name: "x", dir: mkdtempSync("/tmp/dd/s"), auth: { sysUser: "s", sysPassword: "s", appUser: "a", appPassword: "a" } });
await s.start();
const nc = await connect({ servers: s.url });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: "B", subjects: ["b.>"], allow_direct: true, allow_rollup_hdrs: true });
const js = jetstream(nc);
let skipped = 0;
for (let round = 0; round < 20; round++) {
  const c = await js.consumers.get("B", { filter_subjects: "b.M.>", deliver_policy: DeliverPolicy.LastPerSubject });
  const msgs = await c.consume();
  const seen = new Set<number>();
  (async () => { for await (const m of msgs) seen.add(m.seq); })();
  const metas = new Map<string, number>();
  const chunks = new Map<string, number[]>();
  for (const k of ["a", "b", "c", "d"]) {
    const cs = []; for (let i = 0; i < 3; i++) cs.push((await js.publish(`b.C.${k}${round}`, "c")).seq);
    chunks.set(k, cs);
    metas.set(k, (await js.publish(`b.M.${k}`, "put")).seq);
  }
  const published: number[] = [];
  await Promise.all(["a", "b", "c", "d"].map(async (k) => {
    const seq = (await js.publish(`b.M.${k}`, "marker")).seq;
    published.push(seq);
    await jsm.streams.deleteMessage("B", metas.get(k)!, false);
    await Promise.all(chunks.get(k)!.map((q) => jsm.streams.deleteMessage("B", q, false)));
  }));
  await sleep(300);
  for (const p of published) if (!seen.has(p)) skipped++;
  await msgs.close();
}
console.log("markers skipped:", skipped);
await nc.close(); await s.stop();
