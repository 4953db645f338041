import test from "ava";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectTo, tempDir } from "../helpers/nats.ts";

const root = new URL("../../", import.meta.url).pathname;
const shoal = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["bin/shoal.js", ...args], { cwd: root, encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 });

test("help and version exit 0", (t) => {
  const h = shoal(["help"]);
  t.is(h.status, 0);
  t.regex(h.stdout, /shoal dev/);
  t.regex(shoal(["version"]).stdout, /^shoal \d+\.\d+\.\d+/);
});

test("<command> --help prints the help and starts nothing (dev used to start a server and install one)", (t) => {
  for (const args of [["dev", "--help"], ["dev", "-h"], ["start", "--actors", "all", "--help"], ["put", "--help"]]) {
    // a nats-server lookup or a connection would fail here: no binary, no server
    const r = shoal(args, { SHOAL_NATS_SERVER: "/nonexistent/nats-server", SHOAL_NATS_URL: "nats://127.0.0.1:1" });
    t.is(r.status, 0, args.join(" "));
    t.regex(r.stdout, /^shoal — /, args.join(" "));
    t.is(r.stderr, "", args.join(" "));
  }
});

test("usage errors exit 2 with a clear message; nothing starts", (t) => {
  const unknown = shoal(["frobnicate"]);
  t.is(unknown.status, 2);
  t.regex(unknown.stderr, /unknown command "frobnicate"/);

  const badFlag = shoal(["dev", "--nats-prot", "1"]);
  t.is(badFlag.status, 2);
  t.regex(badFlag.stderr, /nats-prot/);

  const badActor = shoal(["start", "--actors", "storage,nope", "--nats", "nats://127.0.0.1:1"]);
  t.is(badActor.status, 2);
  t.regex(badActor.stderr, /unknown actor "(storage|nope)"/);

  const badPort = shoal(["dev", "--nats-port", "70000"]);
  t.is(badPort.status, 2);
  t.regex(badPort.stderr, /dev\.natsPort/);

  // refused for its scheme before any connection is tried
  const badEnv = shoal(["start", "--actors", "all"], { SHOAL_NATS_URL: "http://127.0.0.1" });
  t.is(badEnv.status, 2);
  t.regex(badEnv.stderr, /unsupported scheme/);
});

test("shoal dev --servers 3 starts a local 3-node cluster that takes R3 streams, and stops on SIGINT", async (t) => {
  const data = tempDir(t);
  const child = spawn(process.execPath, ["bin/shoal.js", "dev", "--servers", "3", "--s3-port", "0", "--console-port", "0", "--data", data], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  t.teardown(() => child.kill("SIGKILL"));
  const deadline = Date.now() + 60_000;
  let urls: string[] | undefined;
  while (!urls && Date.now() < deadline && child.exitCode === null) {
    urls = /^NATS: (\S+)$/m.exec(out)?.[1]?.split(",");
    if (!urls) await sleep(100);
  }
  t.is(urls?.length, 3, out);
  const nc = await connectTo(t, urls!);
  const jsm = await jetstreamManager(nc);
  const si = await jsm.streams.add({ name: "DEV3", subjects: ["dev3.>"], num_replicas: 3 });
  t.is(si.config.num_replicas, 3);
  t.is(si.cluster?.replicas?.length, 2);
  await nc.close();
  child.kill("SIGINT");
  t.is(await Promise.race([exited, sleep(30_000).then(() => "hung")]), 0, out);
  t.regex(out, /shoal dev: stopped/);
  t.true(existsSync(join(data, "cluster-3", "shoal-dev-1", "jetstream")), "data kept for the next start");
});

test("shoal dev takes a free port instead of a requested port that is already taken", async (t) => {
  const { createServer } = await import("node:net");
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const taken = (blocker.address() as { port: number }).port;
  const data = tempDir(t);
  const child = spawn(process.execPath, ["bin/shoal.js", "dev", "--nats-port", String(taken), "--s3-port", "0", "--console-port", "0", "--data", data], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  t.teardown(() => child.kill("SIGKILL"));
  const deadline = Date.now() + 30_000;
  let url: string | undefined;
  while (!url && Date.now() < deadline && child.exitCode === null) {
    url = /^NATS: (\S+)$/m.exec(out)?.[1];
    if (!url) await sleep(100);
  }
  t.truthy(url, out);
  t.not(Number(new URL(url!).port), taken);
  t.regex(out, new RegExp(`port ${taken} is taken; using a free port`));
  child.kill("SIGINT");
  t.is(await Promise.race([exited, sleep(30_000).then(() => "hung")]), 0);
});
