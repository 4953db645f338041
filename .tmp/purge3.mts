import { NatsServer } from "../src/engine/server.ts";
import { connect, headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { mkdtempSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
const s = new NatsServer({ name: "x", dir: mkdtempSync("/tmp/dd/s"), auth: { sysUser: "s", sysPassword: "s", appUser: "a", appPassword: "a" } });
await s.start();
const nc = await connect({ servers: s.url });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: "B", subjects: ["b.>"], allow_direct: true, allow_rollup_hdrs: true });
const js = jetstream(nc);
const h = () => { const x = headers(); x.set("Nats-Rollup", "sub"); return x; };
await js.publish("b.C.a", "chunk"); await js.publish("b.M.a", "put a", { headers: h() });
await js.publish("b.C.b", "chunk"); await js.publish("b.M.b", "put b", { headers: h() });
const c = await js.consumers.get("B", { filter_subjects: "b.M.>", deliver_policy: DeliverPolicy.LastPerSubject });
const msgs = await c.consume();
const seen: string[] = [];
(async () => { for await (const m of msgs) seen.push(`${m.seq}:${m.subject}:${m.string()}`); })();
await sleep(300);
for (let i = 0; i < 7; i++) await js.publish("b.C.p1", "part chunk");
for (let i = 0; i < 7; i++) await js.publish("b.C.f", "final chunk");
await js.publish("b.M.big", "put big", { headers: h() });

await sleep(300);
console.log("after complete", seen);
await Promise.all(["a", "b", "big"].map(async (k) => {
  await js.publish(`b.M.${k}`, `marker ${k}`, { headers: h() });

}));
await sleep(1000);
console.log(seen);
console.log(JSON.stringify((await jsm.consumers.info("B", (await (await jsm.consumers.list("B")).next())[0]!.name))));
await nc.close(); await s.stop();
