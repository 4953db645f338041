/**
 * Do rollups make a stream's consumers skip messages? On nats-server 2.9.10
 * a purge — including the one a `Nats-Rollup: sub` header performs — moved
 * consumers past messages they had not delivered yet (nats-server#3838), so
 * Shoal removes replaced metadata and chunks with message deletes instead
 * (docs/architecture.md, "What nats-server 2.15 replaced"). This measures it:
 * an ordered consumer watches the metadata subjects while, per round, four
 * keys get a new metadata message (with a rollup, or plain followed by a
 * message delete of the old one) and their chunks are deleted concurrently;
 * then it counts the new metadata messages the consumer never delivered.
 *
 *   npm run bench -- rollups
 *   BENCH_OLD_NATS_SERVER=/usr/sbin/nats-server npm run bench -- rollups   (adds a row for an older server)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, DeliverPolicy } from "@nats-io/jetstream";
import { NatsServer } from "../src/engine/server.ts";
import { ensureNatsServer, probeNatsServer, type NatsServerBinary } from "../src/engine/binary.ts";

const ROUNDS = process.env["BENCH_QUICK"] === "1" ? 5 : 20;
const KEYS = ["a", "b", "c", "d"];
const auth = { sysUser: "sys", sysPassword: "s", appUser: "shoal", appPassword: "a" };

async function skipped(binary: NatsServerBinary, mode: "rollup" | "delete"): Promise<{ published: number; skipped: number }> {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bench-"));
  const srv = new NatsServer({ name: "r", dir, auth, binary });
  try {
    await srv.start();
    const nc = await connect({ servers: srv.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "B", subjects: ["b.>"], allow_direct: true, allow_rollup_hdrs: true });
    const js = jetstream(nc);
    let published = 0;
    let missed = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const c = await js.consumers.get("B", { filter_subjects: "b.M.>", deliver_policy: DeliverPolicy.LastPerSubject });
      const msgs = await c.consume();
      const seen = new Set<number>();
      void (async () => {
        for await (const m of msgs) seen.add(m.seq);
      })();
      const metas = new Map<string, number>();
      const chunks = new Map<string, number[]>();
      for (const k of KEYS) {
        const cs: number[] = [];
        for (let i = 0; i < 3; i++) cs.push((await js.publish(`b.C.${k}${round}`, "c")).seq);
        chunks.set(k, cs);
        metas.set(k, (await js.publish(`b.M.${k}`, "put")).seq);
      }
      const news: number[] = [];
      await Promise.all(
        KEYS.map(async (k) => {
          const h = headers();
          if (mode === "rollup") h.set("Nats-Rollup", "sub");
          news.push((await js.publish(`b.M.${k}`, "marker", { headers: h })).seq);
          const old = mode === "delete" ? [metas.get(k)!] : [];
          await Promise.all([...chunks.get(k)!, ...old].map((q) => jsm.streams.deleteMessage("B", q, false)));
        }),
      );
      // bounded wait for delivery: up to 2 s
      for (let i = 0; i < 40 && news.some((s) => !seen.has(s)); i++) await sleep(50);
      published += news.length;
      missed += news.filter((s) => !seen.has(s)).length;
      await msgs.close();
    }
    await nc.close();
    return { published, skipped: missed };
  } finally {
    await srv.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const binaries = [ensureNatsServer({ install: false })];
const old = process.env["BENCH_OLD_NATS_SERVER"];
if (old) {
  const b = probeNatsServer(old);
  if (!b) throw new Error(`${old} is not a nats-server`);
  binaries.push(b);
}
const rows: string[] = [];
for (const b of binaries) {
  for (const mode of ["rollup", "delete"] as const) {
    const r = await skipped(b, mode);
    rows.push(`| ${b.version} | ${mode === "rollup" ? "new metadata with Nats-Rollup: sub" : "new metadata, then message delete of the old"} | ${r.published} | ${r.skipped} |`);
  }
}
console.log(
  [`\nRollups vs message deletes: new metadata messages a watching ordered consumer never delivered — ${new Date().toISOString()}, ${ROUNDS} rounds of ${KEYS.length} keys`, "", "| nats-server | how the old metadata goes | published | never delivered |", "|---|---|---|---|", ...rows].join("\n"),
);
