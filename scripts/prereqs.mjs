#!/usr/bin/env node
// What the test suite needs besides node_modules, and installing it.
//
// - nats-server >= Shoal's minimum: `shoal setup` (src/engine: SHOAL_NATS_SERVER,
//   PATH, Shoal's own dir, else Debian's newest package fetched with a private
//   apt configuration into ~/.cache/shoal/nats-server — never the system's).
// - Debian packages the tests drive unchanged: awscli, s3cmd, rclone, curl,
//   python3-boto3, python3-prometheus-client (Prometheus's own parser reads
//   /metrics), chromium (the web console's browser tests).
//
// As root on Debian/Ubuntu, whatever is missing is installed (apt-get install),
// unless SHOAL_PREREQS_NO_INSTALL=1. Otherwise ensurePrereqs() returns one line
// saying what to install.
// Standalone: `node scripts/prereqs.mjs` (exit 1 with that line when it cannot).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const python = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const ok = (cmd, args) => spawnSync(cmd, args, { stdio: "ignore", timeout: 30_000 }).status === 0;
const hasCommand = (name) => ok("sh", ["-c", `command -v ${name}`]);
const hasPython = (mod) => ok(python, ["-c", `import ${mod}`]);

/** Debian package → how to tell it is there. */
export const APT_NEEDS = [
  ["awscli", () => hasCommand("aws")],
  ["s3cmd", () => hasCommand("s3cmd")],
  ["rclone", () => hasCommand("rclone")],
  ["curl", () => hasCommand("curl")],
  ["python3-boto3", () => hasPython("boto3")],
  ["python3-prometheus-client", () => hasPython("prometheus_client")],
  ["chromium", () => hasCommand("chromium") || hasCommand("chromium-browser")],
];

function canInstall() {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return false;
  try {
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(readFileSync("/etc/os-release", "utf8"));
  } catch {
    return false;
  }
}

/** nats-server through `shoal setup`; returns an error line or undefined. */
function ensureEngine(log) {
  const r = spawnSync(process.execPath, [join(root, "bin/shoal.js"), "setup", "--json"], { cwd: root, encoding: "utf8", timeout: 600_000 });
  if (r.status === 0) {
    try {
      const b = JSON.parse(r.stdout.trim().split("\n").pop());
      log(`prereqs: nats-server ${b.version} at ${b.path}`);
      return undefined;
    } catch {
      // fall through
    }
  }
  const first = `${r.stderr}`.trim().split("\n")[0]?.replace(/^shoal setup: /, "") || `shoal setup failed (exit ${r.status ?? r.signal})`;
  return `nats-server: ${first} — run \`npx shoal setup\` as root, or set SHOAL_NATS_SERVER`;
}

/**
 * Installs what is missing (as root on Debian/Ubuntu). Returns undefined when
 * everything is there, else ONE line saying what to install. Options (tests):
 * log, install (may it install), needs (package → present()), engine.
 */
export function ensurePrereqs(o = {}) {
  const log = o.log ?? ((l) => console.log(l));
  const install = o.install ?? (process.env.SHOAL_PREREQS_NO_INSTALL !== "1" && canInstall());
  const needs = o.needs ?? APT_NEEDS;
  const problems = [];
  const engine = (o.engine ?? ensureEngine)(log);
  if (engine) problems.push(engine);
  let missing = needs.filter(([, present]) => !present()).map(([pkg]) => pkg);
  if (missing.length > 0 && install) {
    log(`prereqs: installing ${missing.join(" ")} from Debian (apt-get)`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const apt = (args) => spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env, timeout: 1_200_000 }).status === 0;
    if (!apt(["install", "-y", "-qq", "--no-install-recommends", ...missing])) {
      apt(["update", "-qq"]);
      apt(["install", "-y", "-qq", "--no-install-recommends", ...missing]);
    }
    missing = needs.filter(([, present]) => !present()).map(([pkg]) => pkg);
  }
  if (missing.length > 0) problems.push(`apt-get install -y ${missing.join(" ")}${install ? " (it failed here)" : " (as root)"}`);
  return problems.length ? `test: missing what the tests need; install it: ${problems.join("; ")}` : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const line = ensurePrereqs();
  if (line) {
    console.error(line);
    process.exit(1);
  }
}
