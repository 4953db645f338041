/**
 * Reads on the read-after-write and compare-and-set paths see the stream
 * leader's state (issue 14, defect 9). A server cut off from its peers still
 * holds an old copy of the stream and still answers Direct Gets from its
 * clients; what a GET/HEAD or a commit decides on must never come from it.
 * Through that server, reading a key overwritten since must fail (retryable)
 * rather than return the replaced version.
 */
import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startProxiedCluster, connectTo } from "../helpers/nats.ts";
import { eventually } from "../helpers/wait.ts";
import { ensureStore, storeRef } from "../../src/store/bucket.ts";
import { putObject } from "../../src/store/writer.ts";
import { headObject } from "../../src/store/reader.ts";
import { toShoalError } from "../../src/errors/index.ts";
import type { NatsServer } from "../../src/engine/server.ts";

async function lastSeqOn(srv: NatsServer, stream: string): Promise<number> {
  const j = await srv.monitor<{ account_details?: Array<{ stream_detail?: Array<{ name: string; state: { last_seq: number } }> }> }>("/jsz?streams=true&accounts=true");
  for (const a of j.account_details ?? []) for (const s of a.stream_detail ?? []) if (s.name === stream) return s.state.last_seq;
  return 0;
}

async function* bytes(s: string) {
  yield new TextEncoder().encode(s);
}

test("a server cut off from the stream leader does not serve an overwritten version as the current one", async (t) => {
  const pc = await startProxiedCluster(t, 3);
  const nc = await connectTo(t, pc.cluster.urls);
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const store = storeRef("stale");
  // routes through the proxies may still be connecting: placement waits for every peer
  await eventually(() => ensureStore(jet.jsm, store, 3), () => true, { timeoutMs: 30_000, intervalMs: 300, what: "an R3 stream placed" });
  await putObject(jet, store, "k", bytes("v1"));
  const si = await jet.jsm.streams.info(store.stream);
  const leader = si.cluster!.leader!;
  const follower = pc.cluster.servers.find((s) => s.name !== leader)!;
  const far = await connectTo(t, follower.url, { maxReconnectAttempts: -1 });
  const farJsm = await jetstreamManager(far);
  const v1 = (await headObject(farJsm, store, "k"))!.revision!;
  // the follower itself has applied v1 (its own view, from its monitoring port)
  await eventually(() => lastSeqOn(follower, store.stream), (n) => n >= v1, { what: "v1 applied on the follower" });

  // a connection to the others (made while the cluster is whole: making a manager asks the JetStream API)
  const near = await connectTo(t, pc.cluster.servers.filter((s) => s.name !== follower.name).map((s) => s.url), { maxReconnectAttempts: -1 });
  const nearJet = { nc: near, js: jetstream(near), jsm: await jetstreamManager(near) };
  pc.isolate(follower.name);
  // the majority overwrites
  const v2 = await eventually(() => putObject(nearJet, store, "k", bytes("v2"), { timeoutMs: 5000 }), () => true, { timeoutMs: 30_000, what: "the overwrite on the majority" });
  t.true(v2.revision > v1);

  // through the cut-off server: the current version, or a failure; never v1
  const seen = await headObject(farJsm, store, "k").then(
    (h) => ({ revision: h?.info?.revision }),
    (e: unknown) => ({ error: toShoalError(e).code, retryable: toShoalError(e).retryable }),
  );
  t.log(JSON.stringify(seen));
  t.not((seen as { revision?: number }).revision, v1, "the replaced version was served as current");
  if ("error" in seen) t.true(seen.retryable, `a retryable failure, not ${seen.error}`);
  pc.healAll();
});
