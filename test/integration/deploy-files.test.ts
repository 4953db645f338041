/**
 * The deployment files users copy must stay valid: nats.conf and the cluster
 * config parse with the real nats-server, and nats.conf actually runs (with
 * its fixed port and store dir overridden by flags, never a fixed port here).
 */
import test from "ava";
import { spawnSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureNatsServer } from "../../src/engine/binary.ts";
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

test("nats.conf runs JetStream with a system account (port and store dir overridden)", async (t) => {
  const dir = tempDir(t);
  const conf = readFileSync(join(root, "nats.conf"), "utf8")
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
  for (let i = 0; i < 100 && !ports; i++) {
    try {
      ports = JSON.parse(readFileSync(join(dir, `nats-server_${child.pid}.ports`), "utf8"));
    } catch {
      await sleep(50);
    }
  }
  t.truthy(ports);
  const jsz = await (await fetch(`${ports!.monitoring[0]}/jsz`)).json() as { config?: { store_dir?: string } };
  t.truthy(jsz.config?.store_dir);
  const varz = await (await fetch(`${ports!.monitoring[0]}/varz`)).json() as { system_account?: string };
  t.is(varz.system_account, "SYS");
});
