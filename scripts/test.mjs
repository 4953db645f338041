#!/usr/bin/env node
// Runs the whole ava suite and ends with the plain line CI reads:
// "N passed, N failed" (ava itself prints "N tests passed").
import { spawn } from "node:child_process";

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
  // ava may fail outside a test (an uncaught exception, a timeout): count it.
  if (rc !== 0 && failed === 0) failed = 1;
  console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(rc);
});
