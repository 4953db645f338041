/**
 * Finding (and, on Debian/Ubuntu as root, installing) the nats-server binary.
 * Shoal needs nats-server >= 2.9 (Debian 12 ships 2.9.10).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ShoalError } from "../errors/index.ts";

export const MIN_VERSION: readonly [number, number] = [2, 9];

export interface NatsServerBinary {
  path: string;
  version: string;
}

const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin", "/sbin"];

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Candidate paths in order: $SHOAL_NATS_SERVER, $PATH, the usual sbin/bin dirs. */
export function candidatePaths(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): string[] {
  const out: string[] = [];
  const explicit = env["SHOAL_NATS_SERVER"];
  if (explicit) out.push(explicit);
  for (const dir of (env["PATH"] ?? "").split(delimiter)) if (dir) out.push(join(dir, "nats-server"));
  for (const dir of extraDirs) out.push(join(dir, "nats-server"));
  return [...new Set(out)];
}

/** Parses `nats-server: v2.9.10` (or `v2.10.0-beta.1`) into [major, minor, patch]. */
export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

function probe(path: string): NatsServerBinary | undefined {
  if (!isExecutable(path)) return undefined;
  try {
    const out = execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] });
    const v = parseVersion(out);
    if (!v) return undefined;
    return { path, version: v.join(".") };
  } catch {
    return undefined;
  }
}

export function installHint(): string {
  return [
    "nats-server (>= 2.9) was not found.",
    "Install it with one of:",
    "  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y nats-server",
    "  macOS:          brew install nats-server",
    "  any Linux:      download a release from https://github.com/nats-io/nats-server/releases and put nats-server on PATH",
    "or point Shoal at a binary with SHOAL_NATS_SERVER=/path/to/nats-server.",
  ].join("\n");
}

/** Finds a usable nats-server, or undefined. Throws when only too-old ones exist. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): NatsServerBinary | undefined {
  let tooOld: NatsServerBinary | undefined;
  for (const p of candidatePaths(env, extraDirs)) {
    const b = probe(p);
    if (!b) continue;
    if (versionAtLeast(parseVersion(b.version) ?? [0, 0, 0], MIN_VERSION)) return b;
    tooOld ??= b;
  }
  if (tooOld) {
    throw new ShoalError("NatsServerMissing", `nats-server ${tooOld.version} at ${tooOld.path} is too old; Shoal needs >= ${MIN_VERSION.join(".")}.\n${installHint()}`);
  }
  return undefined;
}

function isDebianLike(): boolean {
  if (existsSync("/etc/debian_version")) return true;
  try {
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(readFileSync("/etc/os-release", "utf8"));
  } catch {
    return false;
  }
}

/**
 * Returns a usable nats-server. When none is found and `install` is set, on
 * Debian/Ubuntu as root it runs `apt-get install -y nats-server` (after
 * `apt-get update` when the package is unknown); anywhere else it throws
 * NatsServerMissing with exact instructions.
 */
export function ensureNatsServer(
  opts: { install?: boolean; log?: (line: string) => void; env?: NodeJS.ProcessEnv; searchDirs?: readonly string[] } = {},
): NatsServerBinary {
  const env = opts.env ?? process.env;
  const dirs = opts.searchDirs ?? EXTRA_DIRS;
  const found = findNatsServer(env, dirs);
  if (found) return found;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const canInstall = opts.install !== false && process.platform === "linux" && isDebianLike() && process.getuid?.() === 0;
  if (!canInstall) throw new ShoalError("NatsServerMissing", installHint());
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const aptInstall = () =>
    spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "nats-server"], { stdio: ["ignore", "inherit", "inherit"], env: aptEnv });
  log("shoal: nats-server not found; installing it with apt-get (Debian package nats-server)…");
  let r = aptInstall();
  if (r.status !== 0) {
    log("shoal: running apt-get update first…");
    spawnSync("apt-get", ["update"], { stdio: ["ignore", "inherit", "inherit"], env: aptEnv });
    r = aptInstall();
  }
  const after = findNatsServer(env, dirs);
  if (r.status !== 0 || !after) {
    throw new ShoalError("NatsServerMissing", `apt-get install nats-server failed (exit ${r.status ?? r.signal}).\n${installHint()}`);
  }
  log(`shoal: installed nats-server ${after.version} at ${after.path}`);
  return after;
}
