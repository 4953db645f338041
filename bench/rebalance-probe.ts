/**
 * Probe: what nats-server does for the moves the rebalancer uses
 * (peer-remove, peer-evacuate, leader step-down with a preferred server,
 * a removed server coming back). Run: SHOAL_NATS_SERVER=… node --import=tsx bench/rebalance-probe.ts
 * Prints what it saw; docs/rebalancer.md quotes the results.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsCluster } from "../src/engine/cluster.ts";
import { NatsServer } from "../src/engine/server.ts";
import { freePort } from "../src/engine/ports.ts";

const AUTH = { sysUser: "sys", sysPassword: "sys", appUser: "shoal", appPassword: "shoal" };
const dir = mkdtempSync(join(tmpdir(), "shoal-probe-"));
const cluster = await NatsCluster.start({ size: 3, dir, auth: AUTH });
let extra: NatsServer | undefined;
try {
  const nc = await connect({ servers: cluster.urls });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const peersOf = async (s: string): Promise<{ leader?: string; peers: (string | undefined)[] }> => {
    const si = await jsm.streams.info(s).catch(() => null);
    if (!si) return { peers: ["(no info)"] };
    return { leader: si.cluster?.leader, peers: [si.cluster?.leader, ...(si.cluster?.replicas ?? []).map((r) => `${r.name}${r.current ? "" : "(behind)"}${r.offline ? "(offline)" : ""}`)] };
  };
  const MB = 8;
  for (const s of ["A", "B", "C"]) {
    await jsm.streams.add({ name: s, subjects: [`${s}.>`], num_replicas: 3 });
    const buf = new Uint8Array(128 * 1024);
    const acks = [];
    for (let i = 0; i < MB * 8; i++) acks.push(js.publish(`${s}.x`, buf));
    await Promise.all(acks);
  }
  console.log("start", await peersOf("A"));
  // add a 4th server
  extra = new NatsServer({ name: "n4", dir: join(dir, "n4"), auth: AUTH, cluster: { name: "shoal", port: await freePort(), routes: cluster.servers.map((s) => s.clusterUrl) } });
  await extra.start();
  await sleep(2000);
  const req = async (subj: string, body: unknown) => {
    const t0 = Date.now();
    const m = await nc.request(subj, JSON.stringify(body), { timeout: 5000 });
    return { ms: Date.now() - t0, r: m.json() };
  };
  // evacuate: non-destructive move
  let t0 = Date.now();
  console.log("evacuate n1 from A", await req("$JS.API.STREAM.PEER.EVACUATE.A", { peer: "n1" }));
  for (let i = 0; i < 60; i++) {
    const p = await peersOf("A");
    console.log(Date.now() - t0, "A", JSON.stringify(p));
    if (!p.peers.some((x) => x?.startsWith("n1")) && p.peers.length === 3 && p.peers.every((x) => x && !x.includes("("))) break;
    await sleep(250);
  }
  t0 = Date.now();
  console.log("remove n2 from B", await req("$JS.API.STREAM.PEER.REMOVE.B", { peer: "n2" }));
  for (let i = 0; i < 60; i++) {
    const p = await peersOf("B");
    console.log(Date.now() - t0, "B", JSON.stringify(p));
    if (!p.peers.some((x) => x?.startsWith("n2")) && p.peers.length === 3 && p.peers.every((x) => x && !x.includes("("))) break;
    await sleep(250);
  }
  // step-down with preferred
  const c = await peersOf("C");
  const want = c.peers.map((x) => x!.replace(/\(.*$/, "")).find((x) => x !== c.leader)!;
  console.log("stepdown C ->", want, await req("$JS.API.STREAM.LEADER.STEPDOWN.C", { placement: { preferred: want } }));
  await sleep(1500);
  console.log("C after", await peersOf("C"));
  console.log("stepdown C to self", await req("$JS.API.STREAM.LEADER.STEPDOWN.C", { placement: { preferred: (await peersOf("C")).leader } }).catch((e) => String(e)));
  // a server removed while down comes back
  const victim = cluster.servers[2]!;
  const vStreams = [];
  for (const s of ["A", "B", "C"]) if ((await peersOf(s)).peers.some((x) => x?.startsWith(victim.name))) vStreams.push(s);
  console.log("victim", victim.name, "holds", vStreams);
  await victim.kill();
  await sleep(1000);
  for (const s of vStreams) console.log("remove dead", s, await req(`$JS.API.STREAM.PEER.REMOVE.${s}`, { peer: victim.name }).catch((e) => String(e)));
  t0 = Date.now();
  for (let i = 0; i < 80; i++) {
    const all = await Promise.all(vStreams.map(async (s) => [s, await peersOf(s).catch((e) => String(e))] as const));
    console.log(Date.now() - t0, JSON.stringify(all));
    if (all.every(([, p]) => typeof p !== "string" && p.peers.length === 3 && p.peers.every((x) => x && !x.includes("(")))) break;
    await sleep(250);
  }
  await victim.start();
  await sleep(4000);
  for (const s of ["A", "B", "C"]) console.log("after return", s, JSON.stringify(await peersOf(s)));
  const sys = await connect({ servers: cluster.urls, user: "sys", pass: "sys" });
  for await (const m of await sys.requestMany("$SYS.REQ.SERVER.PING.JSZ", JSON.stringify({ streams: true }), { strategy: "stall", maxWait: 2000, stall: 300 })) {
    const r = m.json<{ server: { name: string }; data: { streams: number; storage: number; account_details?: Array<{ stream_detail?: Array<{ name: string; state: { bytes: number }; cluster?: { leader?: string } }> }> } }>();
    console.log("jsz", r.server.name, r.data.streams, r.data.storage, JSON.stringify(r.data.account_details?.flatMap((a) => (a.stream_detail ?? []).map((s) => [s.name, s.state.bytes, s.cluster?.leader]))));
  }
  await sys.close();
  await nc.close();
} finally {
  await extra?.kill();
  await cluster.kill();
  rmSync(dir, { recursive: true, force: true });
}
