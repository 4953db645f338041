import test from "ava";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startDevEngine, exitReason } from "../../src/cli/dev.ts";
import type { ServerExit } from "../../src/engine/server.ts";
import { connectTo, startServer, tempDir } from "../helpers/nats.ts";
import { eventually } from "../helpers/eventually.ts";

test("shoal dev starts its server again, on the same port with its data, when it dies unasked; not once shoal dev stops it", async (t) => {
  const lines: string[] = [];
  const engine = await startDevEngine({ dataDir: tempDir(t), natsPort: 0, servers: 1 }, (l) => lines.push(l));
  t.teardown(() => engine.stop());
  const [srv] = engine.servers;
  const url = engine.urls[0]!;
  const auth = { user: engine.credentials.appUser, pass: engine.credentials.appPassword };
  const nc = await connectTo(t, url, auth);
  await jetstreamManager(nc).then((jsm) => jsm.streams.add({ name: "KEPT", subjects: ["kept.>"] }));
  await jetstream(nc).publish("kept.one", "stored before the crash");
  await nc.close();

  const first = srv!.pid!;
  process.kill(first, "SIGKILL");
  await eventually("the server back", 20_000, () => lines.some((l) => l.includes("is back")));
  t.true(lines.some((l) => l.includes("exited unexpectedly (killed by SIGKILL)")), lines.join("\n"));
  t.not(srv!.pid, first);
  t.is(srv!.url, url, "the same port");
  const again = await connectTo(t, url, auth);
  const m = await (await jetstreamManager(again)).streams.getMessage("KEPT", { last_by_subj: "kept.one" });
  t.is(m?.string(), "stored before the crash");
  await again.close();

  const before = lines.length;
  await engine.stop();
  t.false(srv!.running);
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(lines.slice(before), [], "no restart after a stop");
});

test("a server killed for memory in its cgroup says so", async (t) => {
  const srv = await startServer(t, { cgroupMemory: "64MiB" });
  if (!srv.cgroup || !("dir" in srv.cgroup)) {
    // no cgroup on this machine: the reason names the limit only when there is one
    t.is(exitReason(srv, { code: null, signal: "SIGKILL", oomKills: 1 }), "killed by SIGKILL");
    t.log(`no cgroup placement here: ${JSON.stringify(srv.cgroup)}`);
    return;
  }
  const exited = new Promise<ServerExit>((resolve) => (srv.onUnexpectedExit = resolve));
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "HEAP", subjects: ["heap.>"], storage: "memory" as never });
  const js = jetstream(nc);
  // a memory stream holds its messages on the server's heap: 128 MiB of them pass 64 MiB
  const chunk = new Uint8Array(512 * 1024).fill(7);
  const outcome = await Promise.race([
    exited.then((e) => ({ exit: e })),
    (async () => {
      for (let i = 0; i < 256; i++) await js.publish(`heap.${i}`, chunk).catch(() => undefined);
      return { exit: undefined };
    })(),
  ]);
  const e = outcome.exit ?? (await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]));
  t.truthy(e, "the server was killed");
  t.is(e?.signal, "SIGKILL");
  t.true((e?.oomKills ?? 0) >= 1, JSON.stringify(e));
  t.regex(exitReason(srv, e!), /out of memory in its cgroup of 64 MiB \(SHOAL_SERVER_CGROUP_MEMORY raises it\)/);
  await nc.close().catch(() => undefined);
});
