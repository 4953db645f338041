/**
 * Finding — and, on Debian/Ubuntu as root, installing — the nats-server
 * binary Shoal runs (`shoal dev`, `shoal setup`, the test harness).
 *
 * Where it looks, in order:
 *   1. $SHOAL_NATS_SERVER — authoritative: when set, it must be new enough;
 *   2. nats-server on PATH (and the usual sbin/bin dirs), if new enough;
 *   3. one Shoal installed before, in Shoal's own directory
 *      `${XDG_CACHE_HOME:-~/.cache}/shoal/nats-server/<version>/nats-server`
 *      (the newest there).
 * Otherwise, on Debian/Ubuntu as root, src/engine/install.ts fetches Debian's
 * newest nats-server package into that directory with a private apt
 * configuration. Anywhere else: NatsServerMissing (or NatsServerTooOld when
 * only older servers were found, naming both versions) with how to get one.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { ShoalError } from "../errors/index.ts";
import { MIN_VERSION, TESTED_VERSION, compareVersions, formatVersion, parseVersion, versionAtLeast } from "./version.ts";
import { installNatsServerFromApt, type AptInstallOptions } from "./install.ts";

export { MIN_VERSION, TESTED_VERSION, parseVersion, versionAtLeast } from "./version.ts";

export interface NatsServerBinary {
  path: string;
  version: string;
  /** Where it was found: "SHOAL_NATS_SERVER", "PATH", "cache" (Shoal's dir) or "installed" (just now). */
  source?: "SHOAL_NATS_SERVER" | "PATH" | "cache" | "installed";
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

/** Shoal's own directory of nats-server binaries: `${XDG_CACHE_HOME:-$HOME/.cache}/shoal/nats-server`. */
export function shoalEngineDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env["XDG_CACHE_HOME"];
  const base = xdg && isAbsolute(xdg) ? xdg : join(env["HOME"] || homedir(), ".cache");
  return join(base, "shoal", "nats-server");
}

/** Binaries in Shoal's directory, newest version first (`<dir>/<version>/nats-server`). */
export function cachedPaths(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .map((name) => ({ name, v: /^\d+\.\d+\.\d+$/.test(name) ? parseVersion(name) : undefined }))
    .filter((e): e is { name: string; v: [number, number, number] } => e.v !== undefined)
    .sort((a, b) => compareVersions(b.v, a.v))
    .map((e) => join(dir, e.name, "nats-server"));
}

/** PATH candidates in order: each PATH dir, then the usual sbin/bin dirs (Debian puts nats-server in /usr/sbin). */
export function pathCandidates(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): string[] {
  const out: string[] = [];
  for (const dir of (env["PATH"] ?? "").split(delimiter)) if (dir) out.push(join(dir, "nats-server"));
  for (const dir of extraDirs) out.push(join(dir, "nats-server"));
  return [...new Set(out)];
}

/** Every candidate in lookup order (for diagnostics and tests). */
export function candidatePaths(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): string[] {
  const explicit = env["SHOAL_NATS_SERVER"];
  return [...new Set([...(explicit ? [explicit] : []), ...pathCandidates(env, extraDirs), ...cachedPaths(shoalEngineDir(env))])];
}

/** Runs `<path> --version`; undefined when it is not an executable nats-server. */
export function probeNatsServer(path: string): NatsServerBinary | undefined {
  if (!isExecutable(path)) return undefined;
  try {
    const out = execFileSync(path, ["--version"], { encoding: "utf8", timeout: 10_000, stdio: ["ignore", "pipe", "pipe"] });
    if (!/nats-server/i.test(out)) return undefined;
    const v = parseVersion(out);
    if (!v) return undefined;
    return { path, version: formatVersion(v) };
  } catch {
    return undefined;
  }
}

function realOf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

const newEnough = (b: NatsServerBinary) => versionAtLeast(parseVersion(b.version) ?? [0, 0, 0], MIN_VERSION);

export function installHint(env: NodeJS.ProcessEnv = process.env): string {
  const need = formatVersion(MIN_VERSION);
  return [
    `Shoal needs nats-server >= ${need} (it is tested on ${TESTED_VERSION}). Get one with one of:`,
    `  Debian/Ubuntu, as root:  npx shoal setup   (fetches Debian's newest nats-server package into ${shoalEngineDir(env)}; the system's apt sources and state are left unchanged)`,
    `  macOS:                   brew install nats-server`,
    `  any OS:                  download v${TESTED_VERSION} from https://github.com/nats-io/nats-server/releases and put nats-server on PATH`,
    `or point Shoal at a binary with SHOAL_NATS_SERVER=/path/to/nats-server.`,
    `(Debian 12's own package is 2.9.10: too old.)`,
  ].join("\n");
}

export interface LookupResult {
  found?: NatsServerBinary;
  /** Servers found that are older than MIN_VERSION. */
  tooOld: NatsServerBinary[];
}

/**
 * Looks in the three places, in order. SHOAL_NATS_SERVER is authoritative:
 * when set, it is used or refused (NatsServerMissing when it is not a
 * nats-server, NatsServerTooOld when it is too old), never skipped.
 */
export function lookupNatsServer(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): LookupResult {
  const explicit = env["SHOAL_NATS_SERVER"];
  if (explicit) {
    const b = probeNatsServer(explicit);
    if (!b) throw new ShoalError("NatsServerMissing", `SHOAL_NATS_SERVER=${explicit} is not an executable nats-server.\n${installHint(env)}`);
    if (!newEnough(b)) throw tooOldError([b], env);
    return { found: { ...b, source: "SHOAL_NATS_SERVER" }, tooOld: [] };
  }
  const tooOld: NatsServerBinary[] = [];
  const seen = new Set<string>();
  for (const p of pathCandidates(env, extraDirs)) {
    // /sbin is often a link to /usr/sbin: probe (and report) each binary once
    const real = realOf(p);
    if (seen.has(real)) continue;
    seen.add(real);
    const b = probeNatsServer(p);
    if (!b) continue;
    if (newEnough(b)) return { found: { ...b, source: "PATH" }, tooOld };
    tooOld.push(b);
  }
  for (const p of cachedPaths(shoalEngineDir(env))) {
    const b = probeNatsServer(p);
    if (!b) continue;
    if (newEnough(b)) return { found: { ...b, source: "cache" }, tooOld };
    tooOld.push(b);
  }
  return { tooOld };
}

function tooOldError(tooOld: NatsServerBinary[], env: NodeJS.ProcessEnv): ShoalError {
  const found = tooOld.map((b) => `nats-server ${b.version} at ${b.path}`).join(", ");
  return new ShoalError("NatsServerTooOld", `found ${found}, but Shoal needs nats-server >= ${formatVersion(MIN_VERSION)}.\n${installHint(env)}`);
}

/** Finds a usable nats-server, or undefined. Throws only for a bad SHOAL_NATS_SERVER. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env, extraDirs: readonly string[] = EXTRA_DIRS): NatsServerBinary | undefined {
  return lookupNatsServer(env, extraDirs).found;
}

export function isDebianLike(osRelease = "/etc/os-release"): boolean {
  try {
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(readFileSync(osRelease, "utf8"));
  } catch {
    return existsSync("/etc/debian_version");
  }
}

export interface EnsureOptions {
  /** Install when none is found and the machine allows it (Debian/Ubuntu, root). Default true. */
  install?: boolean;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  searchDirs?: readonly string[];
  /** Overrides for the apt installer (tests inject paths and commands). */
  apt?: Partial<AptInstallOptions>;
  /** Whether this machine can install (default: Linux, Debian/Ubuntu, uid 0). */
  canInstall?: boolean;
}

/**
 * Returns a nats-server >= MIN_VERSION: found (see the file comment), or —
 * on Debian/Ubuntu as root, unless `install: false` — installed into Shoal's
 * directory. Otherwise throws NatsServerMissing / NatsServerTooOld with how
 * to get one.
 */
export function ensureNatsServer(opts: EnsureOptions = {}): NatsServerBinary {
  const env = opts.env ?? process.env;
  const { found, tooOld } = lookupNatsServer(env, opts.searchDirs ?? EXTRA_DIRS);
  if (found) return found;
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const canInstall = opts.canInstall ?? (process.platform === "linux" && isDebianLike() && process.getuid?.() === 0);
  if (opts.install === false || !canInstall) {
    if (tooOld.length > 0) throw tooOldError(tooOld, env);
    throw new ShoalError("NatsServerMissing", `nats-server >= ${formatVersion(MIN_VERSION)} was not found (looked at SHOAL_NATS_SERVER, PATH and ${shoalEngineDir(env)}).\n${installHint(env)}`);
  }
  if (tooOld.length > 0) log(`shoal: ${tooOld.map((b) => `nats-server ${b.version} at ${b.path}`).join(", ")} is older than ${formatVersion(MIN_VERSION)}; installing a newer one for Shoal`);
  try {
    const b = installNatsServerFromApt({ cacheDir: shoalEngineDir(env), log, ...opts.apt });
    return { ...b, source: "installed" };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    if (tooOld.length > 0) throw new ShoalError("NatsServerTooOld", `${tooOldError(tooOld, env).message.split("\n")[0]} Installing a newer one failed: ${why}\n${installHint(env)}`, { cause: e });
    throw new ShoalError("NatsServerMissing", `${why}\n${installHint(env)}`, { cause: e });
  }
}
