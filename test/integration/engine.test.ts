import test from "ava";
import { jetstreamManager } from "@nats-io/jetstream";
import { PassThrough } from "node:stream";
import { startServer, connectTo, connectSys, TEST_AUTH } from "../helpers/nats.ts";
import { ensureNatsServer } from "../../src/engine/binary.ts";
import { MIN_VERSION, parseVersion, versionAtLeast } from "../../src/engine/version.ts";
import { healthSubject } from "../../src/subjects/index.ts";
import { main } from "../../src/cli/main.ts";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { SERVER_MEMORY_LIMIT } from "../../src/engine/server.ts";
import { memoryCgroupOf, parseByteSize, SERVER_CGROUP_MEMORY } from "../../src/engine/cgroup.ts";
import { isShoalError } from "../../src/errors/index.ts";

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

test("the harness runs the nats-server Shoal's own lookup finds (>= the minimum); shoal status reports its version", async (t) => {
  const bin = ensureNatsServer({ install: false });
  const srv = await startServer(t);
  const varz = (await (await fetch(`${srv.monitorUrl}/varz`)).json()) as { version: string };
  t.is(varz.version, bin.version);
  t.true(versionAtLeast(parseVersion(varz.version)!, MIN_VERSION), varz.version);
  t.log(`nats-server ${bin.version} from ${bin.source}: ${bin.path}`);
  // a health view to render (the health-monitor's own tests cover its content)
  const nc = await connectTo(t, srv.url);
  const view = { healthy: true, time: new Date().toISOString(), servers: [{ name: "s1", up: true, version: varz.version }], streams: [], underReplicated: [], actors: [], alerts: [] };
  const sub = nc.subscribe(healthSubject(), { callback: (_e, m) => void m.respond(JSON.stringify(view)) });
  t.teardown(() => sub.unsubscribe());
  await nc.flush();
  let out = "";
  const stdout = new PassThrough().on("data", (c: Buffer) => (out += c.toString()));
  const rc = await main(["status", "--nats", srv.url], { actors: {}, stdout, stderr: stdout });
  t.is(rc, 0, out);
  t.true(out.includes(`Engine: nats-server ${varz.version} (Shoal needs >= ${MIN_VERSION.join(".")})`), out);
  out = "";
  await main(["status", "--json", "--nats", srv.url], { actors: {}, stdout, stderr: stdout });
  t.deepEqual(JSON.parse(out).engine, { version: varz.version, minimum: MIN_VERSION.join(".") });
});

test("connecting: wrong credentials → AccessDenied, no server → ServiceUnavailable, the right ones connect", async (t) => {
  const { connectNats } = await import("../../src/connect.ts");
  const { ShoalError } = await import("../../src/errors/index.ts");
  const srv = await startServer(t);
  const wrong = await t.throwsAsync(() => connectNats({ servers: [srv.url], user: TEST_AUTH.appUser, pass: "not-the-password" }), { instanceOf: ShoalError });
  t.is(wrong?.code, "AccessDenied", wrong?.message);
  t.regex(wrong?.message ?? "", /refused the credentials/);
  const nc = await connectNats({ servers: [srv.url], user: TEST_AUTH.appUser, pass: TEST_AUTH.appPassword });
  t.truthy(nc.info?.version);
  await nc.close();
  await srv.stop();
  const gone = await t.throwsAsync(() => connectNats({ servers: [srv.url] }, { options: { maxReconnectAttempts: 0, reconnect: false, timeout: 2000 } }), { instanceOf: ShoalError });
  t.is(gone?.code, "ServiceUnavailable", gone?.message);
});

test("servers Shoal starts run with the Go soft memory limit (GOMEMLIMIT), unless told otherwise", async (t) => {
  const environOf = (pid: number) => new Map(readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  const plain = await startServer(t);
  t.is(environOf(plain.pid!).get("GOMEMLIMIT"), process.env["GOMEMLIMIT"] ?? SERVER_MEMORY_LIMIT);
  const set = await startServer(t, { memoryLimit: "200MiB" });
  t.is(environOf(set.pid!).get("GOMEMLIMIT"), "200MiB");
  const off = await startServer(t, { memoryLimit: "off" });
  t.false(environOf(off.pid!).has("GOMEMLIMIT"));
});

/** This process's v1 memory cgroup, when it may make children there (root, or delegated): where server cgroups go. */
function writableV1Parent(): string | undefined {
  const own = process.platform === "linux" ? memoryCgroupOf(readFileSync("/proc/self/cgroup", "utf8")) : undefined;
  const parent = own?.kind === "v1" ? join("/sys/fs/cgroup/memory", own.path) : undefined;
  try {
    if (!parent || !existsSync(join(parent, "memory.limit_in_bytes"))) return undefined;
    accessSync(parent, constants.W_OK);
    return parent;
  } catch {
    return undefined;
  }
}

test("servers Shoal starts get a memory cgroup of their own (page cache bounded) where Shoal's cgroup allows one; it goes with the server", async (t) => {
  const parent = writableV1Parent();
  const writable = parent !== undefined;
  const plain = await startServer(t);
  if (!writable || !parent) {
    // v2 or no permission: the server runs where Shoal does, and says why
    t.true(plain.cgroup !== undefined && "reason" in plain.cgroup && plain.cgroup.reason.length > 0, JSON.stringify(plain.cgroup));
    t.log(`no cgroup placement on this machine: ${JSON.stringify(plain.cgroup)}`);
    return;
  }
  const dirOf = (pid: number) => join("/sys/fs/cgroup/memory", memoryCgroupOf(readFileSync(`/proc/${pid}/cgroup`, "utf8"))!.path);
  const limitOf = (pid: number) => Number(readFileSync(join(dirOf(pid), "memory.limit_in_bytes"), "utf8"));
  const dir = dirOf(plain.pid!);
  t.is(dir, join(parent, `shoal-nats.${plain.pid}`));
  t.is(limitOf(plain.pid!), parseByteSize(process.env["SHOAL_SERVER_CGROUP_MEMORY"] ?? SERVER_CGROUP_MEMORY) ?? -1);
  t.deepEqual(plain.cgroup, { dir, kind: "v1", limitBytes: limitOf(plain.pid!) });
  const set = await startServer(t, { cgroupMemory: "512MiB" });
  const setDir = dirOf(set.pid!);
  t.is(limitOf(set.pid!), 512 * 1024 * 1024);
  const off = await startServer(t, { cgroupMemory: "off" });
  t.is(dirOf(off.pid!), parent);
  const bad = await t.throwsAsync(startServer(t, { cgroupMemory: "lots" }));
  t.true(isShoalError(bad, "InvalidConfig"), bad?.message);
  // the cgroup goes when its server does, killed or stopped
  await plain.kill();
  t.false(existsSync(dir));
  await set.stop();
  t.false(existsSync(setDir));
});

test("a server's start reaps the empty cgroups of dead servers only, never one another starter has just made for a live server", async (t) => {
  const parent = writableV1Parent();
  if (!parent) {
    t.pass("no cgroup placement on this machine");
    return;
  }
  // as another process leaves them: one of a server that died with its starter, one made a moment ago for a live one
  const dead = join(parent, "shoal-nats.999999999");
  const live = join(parent, `shoal-nats.${process.pid}`);
  for (const d of [dead, live]) mkdirSync(d);
  t.teardown(() => {
    for (const d of [dead, live]) if (existsSync(d)) rmdirSync(d);
  });
  await startServer(t);
  t.false(existsSync(dead), "a dead server's empty cgroup is reaped");
  t.true(existsSync(live), "a live server's cgroup is left to its starter");
});
