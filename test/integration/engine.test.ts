import test from "ava";
import { jetstreamManager } from "@nats-io/jetstream";
import { startServer, connectTo, connectSys } from "../helpers/nats.ts";

test("a single server starts on free loopback ports and serves JetStream", async (t) => {
  const srv = await startServer(t);
  // asked for port -1: the monitoring port read back answers, and reports the client port read back
  const varz = (await (await fetch(`http://127.0.0.1:${srv.ports.http}/varz`)).json()) as { port: number; host: string };
  t.is(varz.port, srv.ports.client);
  t.is(varz.host, "127.0.0.1");
  const nc = await connectTo(t, srv.url);
  const jsm = await jetstreamManager(nc);
  const info = await jsm.getAccountInfo();
  t.is(typeof info.limits.max_storage, "number");
});

test("the system account answers $SYS server pings", async (t) => {
  const srv = await startServer(t);
  const sys = await connectSys(t, srv.url);
  const r = await sys.request("$SYS.REQ.SERVER.PING.VARZ", "", { timeout: 2000 });
  const body = r.json<{ server?: { name?: string } }>();
  t.is(body.server?.name, "s1");
});

test("restart keeps ports and data; a wiped restart has no data", async (t) => {
  const srv = await startServer(t);
  const { client } = srv.ports;
  let nc = await connectTo(t, srv.url);
  let jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "KEEP", subjects: ["keep.>"] });
  await nc.close();

  await srv.restart();
  t.is(srv.ports.client, client);
  nc = await connectTo(t, srv.url);
  jsm = await jetstreamManager(nc);
  t.is((await jsm.streams.info("KEEP")).config.name, "KEEP");
  await nc.close();

  await srv.restartWiped();
  nc = await connectTo(t, srv.url);
  jsm = await jetstreamManager(nc);
  await t.throwsAsync(() => jsm.streams.info("KEEP"), { message: /stream not found/ });
});
