/**
 * The cost of reading a key's head linearizably (issue 14: GET/HEAD through
 * a stale leader). On R>1 streams headObject (src/store/reader.ts) reads past
 * a read barrier (src/runtime/linear.ts) instead of asking the leader; this
 * measures both on one 3-server cluster, in turns, one at a time and 16 at
 * once (concurrent reads of a stream share their barriers), and R1 for
 * reference (R1 keeps the leader read).
 *
 *   npm run bench -- headpath        (BENCH_QUICK=1 for fewer reads)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { ChildProcess } from "node:child_process";
import { NatsCluster } from "../src/engine/cluster.ts";
import type { NatsServer } from "../src/engine/server.ts";
import { ensureNatsServer } from "../src/engine/binary.ts";
import { ensureStore, storeRef } from "../src/store/bucket.ts";
import { putBytes } from "../src/store/writer.ts";
import { headObject, leaderGet } from "../src/store/reader.ts";
import { metaSubject } from "../src/subjects/index.ts";
import { opsMedianInTurns } from "./turns.ts";
import { BENCH_AUTH, cleanUpOnSignal, removeStarted, stopStarted, within } from "./lifetime.ts";

const quick = process.env["BENCH_QUICK"] === "1";
const N = quick ? 100 : 300;
const RUNS = quick ? 3 : 5;

const dir = mkdtempSync(join(tmpdir(), "shoal-bench-headpath-"));
const started = { procs: [] as ChildProcess[], servers: [] as NatsServer[], dirs: [dir] };
cleanUpOnSignal(started);
try {
  const cluster = await within("a 3-server cluster", 60_000, () => NatsCluster.start({ size: 3, dir, auth: BENCH_AUTH, binary: ensureNatsServer({ install: false }) }));
  started.servers.push(...cluster.servers);
  const nc = await connect({ servers: cluster.urls, user: BENCH_AUTH.appUser, pass: BENCH_AUTH.appPassword });
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const rows: string[] = [];
  for (const replicas of [3, 1]) {
    const store = storeRef(`head${replicas}`);
    await within(`an R${replicas} stream`, 60_000, () => ensureStore(jet.jsm, store, replicas));
    await putBytes(jet, store, "k", new TextEncoder().encode("a small object"));
    for (const c of [1, 16]) {
      const r = await opsMedianInTurns(
        {
          leader: () => leaderGet(jet.jsm, store.stream, { last_by_subj: metaSubject(store.name, "k") }),
          head: () => headObject(jet.jsm, store, "k"),
        },
        { n: N, concurrency: c, warm: 50, runs: RUNS },
      );
      rows.push(`| R${replicas} | ${c} | ${(1000 / r.leader).toFixed(2)} | ${(1000 / r.head).toFixed(2)} | ${(r.head / r.leader).toFixed(2)} |`);
    }
  }
  await nc.close();
  console.log(`\nhead reads, median of ${RUNS} runs of ${N} in turns (ms per read = 1000 / ops/s at that concurrency)\n`);
  console.log("| stream | concurrency | plain leader read, ms | headObject, ms | headObject / leader (ops/s) |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) console.log(r);
} finally {
  await stopStarted(started, 0).catch(() => undefined);
  await removeStarted(started);
}
