#!/usr/bin/env node
// Runs the whole ava suite and ends with the plain line CI reads:
// "N passed, N failed" (ava itself prints "N tests passed").
// First it makes sure what the tests need is there (scripts/prereqs.mjs):
// nats-server >= Shoal's minimum, and the Debian packages the tests drive;
// as root on Debian/Ubuntu it installs what is missing, otherwise it stops
// with one line saying what to install.
import { spawn } from "node:child_process";
import { ensurePrereqs } from "./prereqs.mjs";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const started = Date.now();

/**
 * Tests remove their servers and temp dirs in teardown, but a test file that
 * ava kills (its timeout) never runs teardown. After the run, kill the
 * nats-servers this run left in its temp dirs (shoal-test-*, created since it
 * started) and remove those dirs. Linux only (/proc); a no-op elsewhere.
 */
function reapLeftovers() {
  const ours = new Set();
  for (const d of readdirSync(tmpdir())) {
    if (!d.startsWith("shoal-test-")) continue;
    try {
      if (statSync(join(tmpdir(), d)).mtimeMs >= started - 1000) ours.add(join(tmpdir(), d));
    } catch {
      // gone already
    }
  }
  if (ours.size === 0) return;
  let reaped = 0;
  const where = new Set();
  let procs = [];
  try {
    procs = readdirSync("/proc").filter((p) => /^\d+$/.test(p));
  } catch {
    return;
  }
  for (const pid of procs) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
    } catch {
      continue;
    }
    if (!/nats-server/.test(cmd)) continue;
    if ([...ours].some((d) => cmd.includes(d + "/"))) {
      try {
        process.kill(Number(pid), "SIGKILL");
        reaped++;
        where.add([...ours].find((d) => cmd.includes(d + "/")));
      } catch {
        // exited meanwhile
      }
    }
  }
  for (const d of ours) rmSync(d, { recursive: true, force: true });
  if (reaped > 0) console.log(`test: killed ${reaped} nats-server(s) left by tests that did not tear down, in ${[...where].join(", ")}`);
}

const missing = ensurePrereqs();
if (missing) {
  console.error(missing);
  console.log("\n0 passed, 1 failed");
  process.exit(1);
}

const args = process.argv.slice(2);
const child = spawn(process.execPath, ["node_modules/ava/entrypoints/cli.mjs", ...args], {
  stdio: ["inherit", "pipe", "pipe"],
  env: { ...process.env, FORCE_COLOR: "0" },
});
let passed = 0;
let failed = 0;
let skipped = 0;
let out = "";
const scan = (chunk, sink) => {
  sink.write(chunk);
  out += chunk.toString("utf8");
  const lines = out.split("\n");
  out = lines.pop() ?? "";
  for (const line of lines) {
    if (/^\s*✔/.test(line)) passed++;
    else if (/^\s*✘/.test(line) && !/\[skip\]|\[todo\]/.test(line)) failed++;
    else if (/^\s*-\s.*\[skip\]|\[skip\]/.test(line)) skipped++;
  }
};
child.stdout.on("data", (c) => scan(c, process.stdout));
child.stderr.on("data", (c) => scan(c, process.stderr));
child.on("exit", (code, signal) => {
  const rc = code ?? (signal ? 1 : 0);
  reapLeftovers();
  // ava may fail outside a test (an uncaught exception, a timeout): count it.
  if (rc !== 0 && failed === 0) failed = 1;
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(rc);
});
