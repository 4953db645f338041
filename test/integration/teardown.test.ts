import test from "ava";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../helpers/nats.ts";
import { memoryCgroupOf } from "../../src/engine/cgroup.ts";

const root = new URL("../../", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // killed, and not yet reaped by whoever inherited it
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

test("teardown kills servers and removes temp dirs even when a test fails or throws", (t) => {
  const out = join(tempDir(t), "fixture.json");
  const r = spawnSync(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", "--config", "test/helpers/fixtures/ava.config.js", "test/helpers/fixtures/failing.fixture.ts"], {
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

test("npm test's runner stops a run in which no test finishes for its watchdog's time, names what was running, fails, and kills its servers", (t) => {
  const out = join(tempDir(t), "fixture.json");
  const started = Date.now();
  const r = spawnSync(process.execPath, ["scripts/test.mjs", "--config", "test/helpers/fixtures/ava.config.js", "test/helpers/fixtures/hang.fixture.ts"], {
    cwd: root,
    env: { ...process.env, SHOAL_FIXTURE_OUT: out, SHOAL_TEST_WATCHDOG_MS: "5000", SHOAL_PREREQS_NO_INSTALL: "1" },
    encoding: "utf8",
    timeout: 90_000,
  });
  const took = Date.now() - started;
  t.log(`stopped after ${took} ms`);
  t.is(r.status, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /test: no test finished for 5 s: stopping the run/);
  t.regex(r.stdout, /a test's temp dir still there \(its test had not finished\): \S*shoal-test-hangs-in-its-teardown-/);
  t.is(r.stdout.trim().split("\n").at(-1), "0 passed, 1 failed");
  t.true(took < 60_000, "stopped by the watchdog, not by ava's 60 s timeout");
  const { pid, dir } = JSON.parse(readFileSync(out, "utf8")) as { pid: number; dir: string };
  t.false(alive(pid), `server ${pid} still running`);
  t.false(existsSync(dir), `${dir} still exists`);
  // and the memory cgroup it ran in, where it had one (src/engine/cgroup.ts)
  const own = memoryCgroupOf(readFileSync("/proc/self/cgroup", "utf8"));
  if (own) {
    const cg = join(own.kind === "v1" ? "/sys/fs/cgroup/memory" : "/sys/fs/cgroup", own.path, `shoal-nats.${pid}`);
    t.false(existsSync(cg), `${cg} still exists`);
  }
});

test("a test file whose tests are done ends its process even with handles left open, and names them", (t) => {
  const started = Date.now();
  const r = spawnSync(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", "--config", "test/helpers/fixtures/ava.config.js", "test/helpers/fixtures/leak.fixture.ts"], {
    cwd: root,
    env: { ...process.env, FORCE_COLOR: "0" },
    encoding: "utf8",
    timeout: 90_000,
  });
  const took = Date.now() - started;
  t.log(`ava ended after ${took} ms`);
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout + r.stderr, /test: test\/helpers\/fixtures\/leak\.fixture\.ts left open: TCPServerWrap; its process exits anyway/);
  t.true(took < 50_000, "not ended by ava's 60 s timeout");
});
