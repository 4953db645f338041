/**
 * The deployment files users copy must stay valid: nats.conf and the cluster
 * config parse with the real nats-server, and nats.conf actually runs (with
 * its fixed port and store dir overridden by flags, never a fixed port here).
 */
import test, { type ExecutionContext } from "ava";
import { spawnSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureNatsServer } from "../../src/engine/binary.ts";
import { MIN_VERSION, TESTED_VERSION, formatVersion, parseVersion, versionAtLeast } from "../../src/engine/version.ts";
import { tempDir } from "../helpers/nats.ts";

const root = new URL("../../", import.meta.url).pathname;
const bin = () => ensureNatsServer({ install: false }).path;

test("nats.conf is valid for nats-server", (t) => {
  const r = spawnSync(bin(), ["-t", "-c", join(root, "nats.conf")], { encoding: "utf8" });
  t.is(r.status, 0, r.stderr + r.stdout);
});

test("docs/cluster/nats-cluster.conf is valid with its variables set", (t) => {
  const r = spawnSync(bin(), ["-t", "-c", join(root, "docs/cluster/nats-cluster.conf")], {
    encoding: "utf8",
    env: { ...process.env, SERVER_NAME: "n1", SHOAL_NATS_PASS: "a", SHOAL_NATS_SYS_PASS: "b" },
  });
  t.is(r.status, 0, r.stderr + r.stdout);
});

/** Runs nats.conf (after `edit`) with its port and store dir overridden; returns its /varz. */
async function runNatsConf(t: ExecutionContext, edit: (conf: string) => string = (c) => c): Promise<Varz> {
  const dir = tempDir(t);
  const conf = edit(readFileSync(join(root, "nats.conf"), "utf8"))
    .replace(/^listen: .*$/m, "listen: 127.0.0.1:-1")
    .replace(/^http: .*$/m, "http: 127.0.0.1:-1")
    .replace(/store_dir: ".*"/, `store_dir: ${JSON.stringify(dir)}`);
  const path = join(dir, "nats.conf");
  writeFileSync(path, `${conf}\nports_file_dir: ${JSON.stringify(dir)}\n`);
  const child = spawn(bin(), ["-c", path], { stdio: "ignore", detached: true });
  t.teardown(() => {
    try {
      process.kill(child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  });
  let ports: { nats: string[]; monitoring: string[] } | undefined;
  for (let i = 0; i < 200 && !ports; i++) {
    try {
      ports = JSON.parse(readFileSync(join(dir, `nats-server_${child.pid}.ports`), "utf8"));
    } catch {
      await sleep(50);
    }
  }
  if (!ports) throw new Error("nats.conf did not start");
  const jsz = (await (await fetch(`${ports.monitoring[0]}/jsz`)).json()) as { config?: { store_dir?: string } };
  t.truthy(jsz.config?.store_dir);
  return (await (await fetch(`${ports.monitoring[0]}/varz`)).json()) as Varz;
}

interface Varz {
  version: string;
  system_account?: string;
  jetstream?: { config?: { sync_interval?: number; sync_always?: boolean } };
}

test("nats.conf runs JetStream with a system account (port and store dir overridden), fsyncing every 2 minutes as it says", async (t) => {
  const varz = await runNatsConf(t);
  t.is(varz.system_account, "SYS");
  t.is(varz.jetstream?.config?.sync_interval, 120e9);
  t.falsy(varz.jetstream?.config?.sync_always);
});

test("nats.conf's documented choice `sync_interval: always` is valid and makes the server fsync every write", async (t) => {
  const text = readFileSync(join(root, "nats.conf"), "utf8");
  t.regex(text, /^ {2}# sync_interval: always$/m);
  const varz = await runNatsConf(t, (c) => c.replace(/^ {2}# sync_interval: always$/m, "  sync_interval: always"));
  t.true(varz.jetstream?.config?.sync_always);
});

test("compose.yaml pins the official nats image at the version Shoal is tested on, which meets the minimum", (t) => {
  const compose = readFileSync(join(root, "compose.yaml"), "utf8");
  const images = [...compose.matchAll(/^\s*image:\s*(nats:\S+)/gm)].map((m) => m[1]);
  t.deepEqual(images, [`nats:${TESTED_VERSION}-alpine`]);
  t.true(versionAtLeast(parseVersion(TESTED_VERSION)!, MIN_VERSION));
  // the docs name the same minimum as the code
  for (const f of ["nats.conf", "docs/cluster.md", "README.md"]) t.true(readFileSync(join(root, f), "utf8").includes(formatVersion(MIN_VERSION)), f);
});
