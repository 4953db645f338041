#!/usr/bin/env node
// Runs the whole ava suite and ends with the plain line CI reads:
// "N passed, N failed" (ava itself prints "N tests passed").
// First it makes sure what the tests need is there (scripts/prereqs.mjs):
// nats-server >= Shoal's minimum, and the Debian packages the tests drive;
// as root on Debian/Ubuntu it installs what is missing, otherwise it stops
// with one line saying what to install.
import { spawn } from "node:child_process";
import { ensurePrereqs } from "./prereqs.mjs";
import { mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The test dirs still in the run's temp dir (teardown removes a test's own). */
function runDirs() {
  try {
    return readdirSync(runTmp)
      .filter((d) => d.startsWith("shoal-test-"))
      .map((d) => join(runTmp, d));
  } catch {
    return [];
  }
}

/** Whether a process exists and is not a zombie (killed, waiting for its parent to reap it). */
function running(pid) {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/**
 * Tests remove their servers and temp dirs in teardown, but a test file that
 * ava kills (its timeout, the watchdog) never runs teardown. After the run,
 * kill the nats-servers left in the run's temp dir and remove it. The kill
 * is Linux only (/proc).
 */
function reapLeftovers() {
  let reaped = 0;
  const where = new Set();
  let procs = [];
  try {
    procs = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    procs = [];
  }
  const killed = [];
  for (const pid of procs) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue;
    }
    if (!/nats-server/.test(cmd) || !cmd.includes(runTmp + "/")) continue;
    try {
      process.kill(Number(pid), "SIGKILL");
      reaped++;
      killed.push(pid);
      where.add(runDirs().find((d) => cmd.includes(d + "/")) ?? runTmp);
    } catch {
      // exited meanwhile
    }
  }
  // SIGKILL is delivered, not waited for: the servers are gone when the run
  // returns (a stress run saw one still running right after; at most 5 s)
  const until = Date.now() + 5000;
  while (killed.some(running) && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  // the memory cgroup each of them ran in (src/engine/cgroup.ts) goes with it
  const cgroups = serverCgroupParent();
  // (a killed server not yet reaped by its new parent still holds it: at most 3 s more)
  let left = cgroups ? killed.map((pid) => join(cgroups, `shoal-nats.${pid}`)) : [];
  const cgUntil = Date.now() + 3000;
  while (left.length > 0) {
    left = left.filter((dir) => {
      try {
        rmdirSync(dir);
        return false;
      } catch (e) {
        return e.code === "EBUSY"; // else none: not placed, or already gone
      }
    });
    if (left.length === 0 || Date.now() > cgUntil) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  rmSync(runTmp, { recursive: true, force: true });
  if (reaped > 0) console.log(`test: killed ${reaped} nats-server(s) left by tests that did not tear down, in ${[...where].join(", ")}`);
}

/** Where the servers' memory cgroups are made (src/engine/cgroup.ts): this process's v1 memory cgroup, else its v2 one. */
function serverCgroupParent() {
  try {
    const lines = readFileSync("/proc/self/cgroup", "utf8").split("\n").map((l) => /^(\d+):([^:]*):(.*)$/.exec(l.trim())).filter(Boolean);
    const v1 = lines.find((m) => m[2].split(",").includes("memory"));
    if (v1) return join("/sys/fs/cgroup/memory", v1[3]);
    const v2 = lines.find((m) => m[1] === "0" && m[2] === "");
    return v2 ? join("/sys/fs/cgroup", v2[3]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The test files under test/ (ava's `files` glob; helpers excepted), as ava
 * names them in its results: "cluster › model" for test/cluster/model.test.ts.
 */
function testFileNames(dir = "test", prefix = []) {
  const names = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory() && e.name !== "helpers") names.push(...testFileNames(join(dir, e.name), [...prefix, e.name]));
    else if (e.name.endsWith(".test.ts")) names.push([...prefix, e.name.slice(0, -".test.ts".length)].join(" › "));
  }
  return names;
}

const missing = ensurePrereqs();
if (missing) {
  console.error(missing);
  console.log("\n0 passed, 1 failed");
  process.exit(1);
}

const args = process.argv.slice(2);
/**
 * The run's own temp dir: ava and every test process get it as TMPDIR, so
 * what the tests make there (each test's dir carries its title) is this
 * run's alone, even when a test runs this runner inside another run.
 */
const runTmp = mkdtempSync(join(tmpdir(), "shoal-run-"));

/**
 * The run's watchdog. ava waits for every test file's process to end, and
 * its own timeout can stay disarmed (it is not re-armed when it fires inside
 * a test's longer t.timeout): CI once waited its whole 90 minutes for a run
 * whose every test had reported. When no test has finished for this long
 * (longer than any test's own t.timeout), the run is stopped, what was still
 * running is named, and the run fails. SHOAL_TEST_WATCHDOG_MS=0 turns it off
 * (a soak runs for hours).
 */
const WATCHDOG_MS = Number(process.env["SHOAL_TEST_WATCHDOG_MS"] ?? 15 * 60_000);
// ava in its own process group, so that the watchdog stops its test
// processes with it; signals from the terminal are passed on
const child = spawn(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", ...args], {
  stdio: ["inherit", "pipe", "pipe"],
  env: { ...process.env, FORCE_COLOR: "0", TMPDIR: runTmp },
  detached: true,
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      // gone
    }
  });
}
let passed = 0;
let failed = 0;
let skipped = 0;
let out = "";
let lastResult = Date.now();
const reported = new Set();
const scan = (chunk, sink) => {
  sink.write(chunk);
  out += chunk.toString("utf8");
  const lines = out.split("\n");
  out = lines.pop() ?? "";
  for (const line of lines) {
    const result = /^\s*[✔✘]\s+(?:\[[\w ]+\]:?\s*)?(.+?) › [^›]+$/.exec(line);
    if (result) {
      lastResult = Date.now();
      reported.add(result[1]);
    }
    if (/^\s*✔/.test(line)) passed++;
    else if (/^\s*✘/.test(line) && !/\[skip\]|\[todo\]/.test(line)) failed++;
    else if (/^\s*-\s.*\[skip\]|\[skip\]/.test(line)) skipped++;
  }
};
child.stdout.on("data", (c) => scan(c, process.stdout));
child.stderr.on("data", (c) => scan(c, process.stderr));
let stalled = false;
const watchdog =
  WATCHDOG_MS > 0
    ? setInterval(() => {
        if (Date.now() - lastResult < WATCHDOG_MS) return;
        clearInterval(watchdog);
        stalled = true;
        console.log(`\ntest: no test finished for ${Math.round(WATCHDOG_MS / 1000)} s: stopping the run`);
        const silent = args.length === 0 ? testFileNames().filter((f) => !reported.has(f)) : [];
        if (silent.length > 0) console.log(`test: files that reported no result: ${silent.join(", ")}`);
        for (const d of runDirs()) console.log(`test: a test's temp dir still there (its test had not finished): ${d}`);
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // gone
        }
      }, Math.min(5000, WATCHDOG_MS))
    : undefined;
child.on("exit", (code, signal) => {
  if (watchdog) clearInterval(watchdog);
  const rc = stalled ? 1 : (code ?? (signal ? 1 : 0));
  reapLeftovers();
  // ava may fail outside a test (an uncaught exception, a timeout, the watchdog): count it.
  if (rc !== 0 && failed === 0) failed = 1;
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(rc);
});
