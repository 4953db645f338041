/**
 * Probe (not a benchmark, never part of `npm test`): how long the JetStream
 * meta group stays without a leader when its leader is lost soon after
 * another server came back — with its disk wiped or not, and after waiting
 * for one of two "it is back" signals. nats-server only, no Shoal process.
 * The figures are in docs/rebalancer.md, "One failure at a time".
 *
 *   node --import=tsx bench/repair-quorum-probe.ts
 *   PROBE_WIPE=0|1 (default 1)   restart n2 with its data, or wiped
 *   PROBE_WAIT=none|leader|own   before killing the meta leader, wait for nothing,
 *                                for the leader's view to call n2 current, or for
 *                                n2's own /jsz to know the leader and its 3 peers
 *                                and its stream replicas to be current (default none)
 *   PROBE_LIMIT_S=90             give up waiting for a meta leader after this
 *
 * 4 servers, six R3 streams. n2 is SIGKILLed, restarted (wiped or not),
 * then the meta leader (never n2) is SIGKILLed; the probe asks every
 * running server for $JS.API.INFO every second until all answer.
 */
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { NatsCluster } from "../src/engine/cluster.ts";

const AUTH = { sysUser: "sys", sysPassword: "sys", appUser: "shoal", appPassword: "shoal" };
const WIPE = process.env["PROBE_WIPE"] !== "0";
const WAIT = (process.env["PROBE_WAIT"] ?? "none") as "none" | "leader" | "own";
const LIMIT_S = Number(process.env["PROBE_LIMIT_S"] ?? 90);

interface Meta {
  leader?: string;
  replicas?: Array<{ name: string; current?: boolean }>;
}

const dir = mkdtempSync(join(tmpdir(), "shoal-quorum-probe-"));
const cluster = await NatsCluster.start({ size: 4, auth: AUTH, dir });
try {
  const s = cluster.servers;
  const n2 = s[1]!;
  const meta = async (i: number): Promise<Meta | undefined> => (s[i]!.running ? (await s[i]!.monitor<{ meta_cluster?: Meta }>("/jsz").catch(() => undefined))?.meta_cluster : undefined);
  const leader = async () => {
    for (let i = 0; i < s.length; i++) {
      const m = await meta(i);
      if (m?.leader) return m.leader;
    }
    return undefined;
  };
  const nc = await connect({ servers: s.map((x) => x.url), user: AUTH.appUser, pass: AUTH.appPassword });
  const jsm = await jetstreamManager(nc, { timeout: 2000 });
  for (let i = 0; i < 6; i++) await jsm.streams.add({ name: `S${i}`, subjects: [`s${i}.>`], num_replicas: 3 });
  await n2.kill();
  await sleep(2500);
  const t0 = Date.now();
  if (WIPE) await n2.restartWiped();
  else await n2.start();
  for (let i = 0; WAIT !== "none"; i++) {
    if (i > 600) throw new Error("n2 did not come back within 60 s");
    const l = await leader();
    const li = s.findIndex((x) => x.name === l);
    if (WAIT === "leader" && li >= 0 && (await meta(li))?.replicas?.find((r) => r.name === "n2")?.current) break;
    if (WAIT === "own") {
      const own = await meta(1);
      let streamsOk = !!own?.leader && (own.replicas ?? []).length >= 3;
      for (let k = 0; streamsOk && k < 6; k++) {
        const si = await jsm.streams.info(`S${k}`).catch(() => undefined);
        const peers = [si?.cluster?.leader, ...(si?.cluster?.replicas ?? []).map((r) => r.name)];
        if (!si?.cluster?.leader || (peers.includes("n2") && si.cluster.leader !== "n2" && !si.cluster.replicas?.find((r) => r.name === "n2")?.current)) streamsOk = false;
      }
      if (streamsOk) break;
    }
    await sleep(100);
  }
  const metaLeader = await leader();
  const victim = s.find((x) => x.name === metaLeader && x !== n2) ?? s[2]!;
  console.log(`n2 restarted ${WIPE ? "wiped" : "with its data"}; waited for ${WAIT} (${Date.now() - t0} ms); killing the meta leader ${victim.name}`);
  await victim.kill();
  const k0 = Date.now();
  const per: Array<[string, JetStreamManager]> = [];
  for (const x of s) if (x.running) per.push([x.name, await jetstreamManager(await connect({ servers: x.url, user: AUTH.appUser, pass: AUTH.appPassword, reconnect: false }), { timeout: 2000, checkAPI: false })]);
  for (;;) {
    const row = await Promise.all(per.map(([n, m]) => m.getAccountInfo().then(() => `${n}:ok`, (e: Error) => `${n}:${e.message.slice(0, 40)}`)));
    const s2 = ((Date.now() - k0) / 1000).toFixed(1);
    console.log(`${s2} s  ${row.join(" | ")}`);
    if (row.every((r) => r.endsWith(":ok"))) {
      console.log(`meta API answering on every server ${s2} s after the leader's SIGKILL (new leader ${await leader()})`);
      break;
    }
    if (Date.now() - k0 > LIMIT_S * 1000) {
      console.log(`no meta leader ${LIMIT_S} s after the leader's SIGKILL; n2's own view: ${JSON.stringify(await meta(1))}`);
      break;
    }
    await sleep(1000);
  }
} finally {
  await cluster.kill();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
