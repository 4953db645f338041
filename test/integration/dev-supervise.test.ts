import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startDevEngine, exitReason, superviseServer } from "../../src/cli/dev.ts";
import type { NatsServer, ServerExit } from "../../src/engine/server.ts";
import { connectTo, startServer, tempDir } from "../helpers/nats.ts";
import { eventually } from "../helpers/eventually.ts";

/** Fills a memory stream (held on the server's heap) until the server is gone or 128 MiB are in. */
async function fillHeap(srv: NatsServer): Promise<void> {
  const nc = await (await import("@nats-io/transport-node")).connect({ servers: srv.url, maxReconnectAttempts: 0 });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: "HEAP", subjects: ["heap.>"], storage: "memory" as never });
    const js = jetstream(nc);
    const chunk = new Uint8Array(512 * 1024).fill(7);
    for (let i = 0; i < 256 && srv.running; i++) await js.publish(`heap.${i}`, chunk, { timeout: 2000 }).catch(() => undefined);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

test("shoal dev says so when its server dies unasked, and leaves a server killed from outside down; nothing more once shoal dev stops", async (t) => {
  const lines: string[] = [];
  const engine = await startDevEngine({ dataDir: tempDir(t), natsPort: 0, servers: 1 }, (l) => lines.push(l));
  t.teardown(() => engine.stop());
  const srv = engine.servers[0]!;
  const pid = srv.pid!;
  process.kill(pid, "SIGKILL");
  await eventually("the exit reported", 10_000, () => lines.some((l) => l.includes("exited unexpectedly")));
  t.true(lines.some((l) => l.includes(`nats-server shoal-dev exited unexpectedly (killed by SIGKILL); not started again`)), lines.join("\n"));
  await new Promise((r) => setTimeout(r, 1000));
  t.false(srv.running, "a server killed from outside stays down (a failover one is trying out)");
  const before = lines.length;
  await engine.stop();
  t.deepEqual(lines.slice(before), []);
});

test("a server its memory cgroup killed is named so, and shoal dev's supervisor starts it again on the same port with its data", async (t) => {
  const srv = await startServer(t, { cgroupMemory: "64MiB" });
  if (!srv.cgroup || !("dir" in srv.cgroup)) {
    // no cgroup on this machine: no limit to name, and no OOM kill of Shoal's making to undo
    t.is(exitReason(srv, { code: null, signal: "SIGKILL", oomKills: 1 }), "killed by SIGKILL");
    t.log(`no cgroup placement here: ${JSON.stringify(srv.cgroup)}`);
    return;
  }
  const nc = await connectTo(t, srv.url);
  await (await jetstreamManager(nc)).streams.add({ name: "KEPT", subjects: ["kept.>"] });
  await jetstream(nc).publish("kept.one", "on disk before the kill");
  await nc.close();

  const lines: string[] = [];
  const exits: ServerExit[] = [];
  const supervisor = superviseServer(srv, (l) => lines.push(l));
  const report = srv.onUnexpectedExit!;
  srv.onUnexpectedExit = (e) => {
    exits.push(e);
    report(e);
  };
  t.teardown(() => supervisor.close());
  const url = srv.url;
  const first = srv.pid;
  await fillHeap(srv);
  await eventually("the server back", 20_000, () => lines.some((l) => l.includes("is back")));
  t.is(exits[0]?.signal, "SIGKILL");
  t.true((exits[0]?.oomKills ?? 0) >= 1, JSON.stringify(exits));
  t.regex(exitReason(srv, exits[0]!), /^killed by SIGKILL: out of memory in its cgroup of 64 MiB \(SHOAL_SERVER_CGROUP_MEMORY raises it\)$/);
  t.true(lines.some((l) => l.includes("exited unexpectedly (killed by SIGKILL: out of memory in its cgroup of 64 MiB") && l.includes("starting it again")), lines.join("\n"));
  t.not(srv.pid, first);
  t.is(srv.url, url, "the same port");
  const again = await connectTo(t, url);
  const m = await (await jetstreamManager(again)).streams.getMessage("KEPT", { last_by_subj: "kept.one" });
  t.is(m?.string(), "on disk before the kill");
});
