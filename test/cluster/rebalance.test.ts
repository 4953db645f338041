/**
 * The rebalancer on a real cluster, as an operator lives it: 3 servers with
 * R3 buckets holding data; a 4th joins and data moves onto it; one is
 * SIGKILLed and, past a short grace period, repair restores R3 on the
 * others; the killed one returns with no stale replica in service; another
 * is drained until it is safe to stop. Writes run through the SDK the whole
 * time: none acknowledged is lost, and the foreground throughput during the
 * moves is reported against a baseline (t.log; the machine is shared, so it
 * is a report, not a bound).
 * Promises checked: durability (1), convergence (5) — DESIGN.md.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/eventually.ts";
import { Writer, converged, convergenceProblem, growableCluster, shoalOn, shoalStreams } from "../helpers/rebalance.ts";
import { rebalanceEventSubject } from "../../src/subjects/index.ts";
import { spawn } from "node:child_process";

const root = new URL("../../", import.meta.url).pathname;
/** Runs the shoal CLI (a real process) and returns its exit code and stdout. */
function shoal(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["bin/shoal.js", ...args], { cwd: root, timeout: 60_000 });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("close", (code) => resolve({ code, out, err }));
  });
}

const GRACE_MS = 3000;
const BUCKETS = ["rb0", "rb1", "rb2", "rb3"];
const OBJECT = 512 * 1024;
const PER_BUCKET = 8; // 4 MiB per bucket

const debug = (...a: unknown[]) => process.env["SHOAL_DEBUG_REBALANCE"] && console.error(new Date().toISOString(), ...a);

function recordEvents(nc: NatsConnection) {
  const events: Array<{ event: string; move?: { stream: string; from: string; to: string; reason: string }; landed?: string; server?: string; error?: string }> = [];
  nc.subscribe(rebalanceEventSubject(), {
    callback: (_e, m) => {
      events.push(m.json());
      debug("event", m.string());
    },
  });
  return events;
}

test("scenario: scale-out onto a 4th server, repair after SIGKILL past the grace, the returning server brings no stale replica back, drain until safe to stop; no acknowledged write lost", async (t) => {
  t.timeout(480_000);
  const g = await growableCluster(t, 3);
  const url = g.urls().join(",");
  const { client, jsm } = await shoalOn(t, url, { graceMs: GRACE_MS, intervalMs: 500, policy: { maxBytesPerSec: 16 * 1024 * 1024 } });
  const nc = await connectTo(t, url);
  const events = recordEvents(nc);
  const data = new Map<string, Buffer>();
  for (const b of BUCKETS) {
    await client.createBucket(b, { replicas: 3 });
    for (let i = 0; i < PER_BUCKET; i++) {
      const body = randomBytes(OBJECT);
      await client.put(b, `k${i}`, body);
      data.set(`${b}/k${i}`, body);
    }
  }
  await client.createBucket("fgw", { replicas: 3 });
  const writer = new Writer(client, "fgw", 64 * 1024);
  writer.start();
  const t0 = Date.now();
  await eventually("settled on 3 servers", 60_000, () => converged(jsm, ["n1", "n2", "n3"], []));
  await new Promise((r) => setTimeout(r, 3000));
  const baseline = writer.rate(Date.now() - 3000, Date.now());

  // 1. scale-out
  const added = Date.now();
  await g.add("n4");
  const live4 = ["n1", "n2", "n3", "n4"];
  const out = await eventually("data moved onto n4 and balanced", 120_000, async () => {
    const st = await shoalStreams(jsm);
    const onN4 = st.filter((s) => s.name.startsWith("OBJ_rb") && s.peers.includes("n4")).length;
    const p = convergenceProblem(st, live4, []);
    if (p || onN4 < 3) throw new Error(p || `${onN4} bucket streams on n4`);
    return onN4;
  });
  const scaleEnd = Date.now();
  const during = writer.rate(added, scaleEnd);
  const moved = events.filter((e) => e.event === "finished" && e.move?.reason === "balance").length;
  t.log(`scale-out: ${out.value} bucket streams on n4 after ${out.ms} ms, ${moved} replica moves; foreground ${(baseline / 2 ** 20).toFixed(2)} MiB/s before, ${(during / 2 ** 20).toFixed(2)} MiB/s during (${Math.round((100 * during) / Math.max(1, baseline))}%)`);
  t.true(out.value >= 3, "n4 holds bucket replicas");

  // 2. SIGKILL one, wait out the grace: repair back to R3 on the other three
  const victim = g.all.find((s) => s.name === "n2")!;
  const killedAt = Date.now();
  await victim.kill();
  const live3 = ["n1", "n3", "n4"];
  const repaired = await eventually("repair restores R3 without n2", 120_000, () => converged(jsm, live3, ["n2"]), 500);
  const repairMs = Date.now() - killedAt;
  t.true(repairMs >= GRACE_MS, "nothing is repaired within the grace period");
  t.log(`repair: every Shoal stream back to its replicas on n1,n3,n4 ${repairMs} ms after SIGKILL (grace ${GRACE_MS} ms); foreground ${(writer.rate(killedAt, Date.now()) / 2 ** 20).toFixed(2)} MiB/s meanwhile`);
  void repaired;

  // 3. the killed server returns: its old replicas are not back in service
  const landedOnN2 = () => new Set(events.filter((e) => e.event === "finished" && e.landed === "n2").map((e) => e.move!.stream));
  await victim.start();
  await eventually("n2 answers again", 30_000, async () => (await client.rebalance.servers()).some((s) => s.name === "n2" && s.state === "up") || undefined);
  // every stream that lists n2 again got it through a move the rebalancer made (and announced)
  await eventually("no stream lists n2 unless a move put it there", 30_000, async () => {
    const stale = (await shoalStreams(jsm)).filter((s) => s.peers.includes("n2") && !landedOnN2().has(s.name));
    if (stale.length) throw new Error(`n2 in ${stale.map((s) => s.name).join(", ")}`);
    return true;
  });

  // 4. drain another: it empties and is reported safe to stop
  await client.rebalance.drain("n3");
  const drained = await eventually("n3 drained", 120_000, async () => (await client.rebalance.servers()).find((s) => s.name === "n3" && s.safeToStop) ?? undefined, 500);
  t.is(drained.value.replicas, 0);
  t.is(drained.value.leaders, 0);
  await eventually("the safe event", 10_000, () => events.some((e) => e.event === "safe" && e.server === "n3") || undefined);
  await eventually("converged without n3", 120_000, () => converged(jsm, ["n1", "n2", "n4"], ["n3"]), 500);

  // the same through the CLI
  const ls = await shoal(["server", "ls", "--json", "--nats", url]);
  t.is(ls.code, 0, ls.err);
  const rows = JSON.parse(ls.out) as Array<{ name: string; state: string; safeToStop: boolean; replicas: number }>;
  t.deepEqual(rows.find((r) => r.name === "n3"), { ...rows.find((r) => r.name === "n3")!, state: "drained", safeToStop: true, replicas: 0 });
  const st = await shoal(["rebalance", "status", "--json", "--nats", url]);
  t.is(st.code, 0, st.err);
  t.true((JSON.parse(st.out) as { done: number }).done >= 0);
  const human = await shoal(["server", "ls", "--nats", url]);
  t.regex(human.out, /SERVER\s+STATE\s+BYTES\s+REPLICAS\s+LEADERS\s+SAFE TO STOP/);
  t.regex(human.out, /n3\s+drained\s+0 B\s+0\s+0\s+yes/);
  const plan = await shoal(["rebalance", "plan", "--nats", url]);
  t.is(plan.code, 0, plan.err);
  t.regex(plan.out, /dry run/);
  const typo = await shoal(["server", "drain", "n99", "--nats", url]);
  t.is(typo.code, 3, "an unknown server is not found");
  t.regex(typo.err, /no server named "n99"/);
  const undrain = await shoal(["server", "undrain", "n3", "--nats", url]);
  t.is(undrain.code, 0, undrain.err);

  await writer.stop();
  t.log(`foreground writer: ${writer.puts} puts acknowledged, ${writer.errors} failed, over ${Math.round((Date.now() - t0) / 1000)} s`);
  // no acknowledged write lost, byte for byte
  for (const [k, body] of data) {
    const [b, key] = k.split("/") as [string, string];
    t.true(Buffer.from(await client.getBytes(b, key)).equals(body), `${k} reads back`);
  }
  for (const [key, body] of writer.acked) t.true(Buffer.from(await client.getBytes("fgw", key)).equals(body), `fgw/${key} reads back`);
  // a move planned on a view JetStream has already moved past may be refused; it is reported and planned again
  const failed = events.filter((e) => e.event === "failed");
  t.log(`moves: ${events.filter((e) => e.event === "finished").length} finished, ${failed.length} failed and planned again${failed.length ? ` (${failed.map((e) => e.error).join("; ")})` : ""}`);
});
