import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/nats.ts";

const root = new URL("../../", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("teardown kills servers and removes temp dirs even when a test fails or throws", (t) => {
  const out = join(tempDir(t), "fixture.json");
  const r = spawnSync(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", "--config", "test/helpers/fixtures/ava.config.js"], {
    cwd: root,
    env: { ...process.env, SHOAL_FIXTURE_OUT: out, FORCE_COLOR: "0" },
    encoding: "utf8",
    timeout: 90_000,
  });
  t.not(r.status, 0, "the fixture tests did fail");
  t.regex(r.stdout + r.stderr, /failing on purpose/);
  t.regex(r.stdout + r.stderr, /throwing on purpose/);

  const single = JSON.parse(readFileSync(out, "utf8")) as { pid: number; dir: string };
  t.true(single.pid > 0);
  t.false(alive(single.pid), `server ${single.pid} still running`);
  t.false(existsSync(single.dir), `${single.dir} still exists`);

  const cluster = JSON.parse(readFileSync(`${out}.cluster`, "utf8")) as { pids: number[] };
  t.is(cluster.pids.length, 3);
  for (const pid of cluster.pids) t.false(alive(pid), `cluster server ${pid} still running`);
});
