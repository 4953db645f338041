/**
 * Installs Debian's newest nats-server package into Shoal's own directory,
 * leaving the system's apt sources, lists, caches and installed packages
 * exactly as they were, and installing no service.
 *
 * How: the archive's address is read from the machine's own apt sources
 * (/etc/apt/sources.list and /etc/apt/sources.list.d/*.list / *.sources —
 * never a host written here): the entry for the distribution's main archive
 * (the release's own suite, component main; not security, updates or other
 * vendors), keeping its Signed-By keyring. Then, in a private temp dir, with
 * a private apt configuration (APT_CONFIG: its own sources, lists, caches,
 * preferences, dpkg status and configuration parts — so no system apt hook
 * runs either), for each newer suite, newest first (Debian: unstable,
 * testing, stable; Ubuntu, untested: devel with universe), until one
 * offers nats-server >= MIN_VERSION:
 *   apt-get update; apt-cache show nats-server; apt-get download nats-server;
 *   dpkg-deb -x; `nats-server --version`;
 * and the binary is copied to `<cacheDir>/<version>/nats-server`.
 * The newest suite is tried first, so the first one new enough has the
 * newest package.
 *
 * Every path and command is injectable, so tests run it on fakes and temp
 * dirs (test/unit/engine-install.test.ts).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ShoalError } from "../errors/index.ts";
import { MIN_VERSION, compareVersions, formatVersion, parseVersion, versionAtLeast } from "./version.ts";

export interface AptInstallOptions {
  /** Shoal's directory of binaries; the binary lands in `<cacheDir>/<version>/nats-server`. */
  cacheDir: string;
  log: (line: string) => void;
  /** The machine's one-line sources file. */
  sourcesFile: string;
  /** The machine's sources dir (*.list one-line, *.sources deb822). */
  sourcesDir: string;
  osRelease: string;
  /** Commands (tests inject fakes). */
  aptGet: string;
  aptCache: string;
  aptConfig: string;
  dpkgDeb: string;
  /** Suites to try, newest first; default from the distribution. */
  suites?: readonly string[];
  /** Where the private apt dir is made (removed afterwards). */
  tmpRoot: string;
  /** Per-command time limit. */
  commandTimeoutMs: number;
}

export const APT_DEFAULTS: Omit<AptInstallOptions, "cacheDir" | "log"> = {
  sourcesFile: "/etc/apt/sources.list",
  sourcesDir: "/etc/apt/sources.list.d",
  osRelease: "/etc/os-release",
  aptGet: "apt-get",
  aptCache: "apt-cache",
  aptConfig: "apt-config",
  dpkgDeb: "dpkg-deb",
  tmpRoot: tmpdir(),
  commandTimeoutMs: 300_000,
};

/** One apt source entry (either format). */
export interface AptSource {
  file: string;
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  /** Signed-By as written: a keyring path, fingerprints, or an inline key (deb822, with its continuation lines). */
  signedBy?: string;
  enabled: boolean;
}

/** Parses one-line `deb [opt=val …] uri suite comp…` entries. */
export function parseOneLineSources(text: string, file = "sources.list"): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(?:\s+(.*))?$/.exec(line);
    if (!m) continue;
    const opts = new Map<string, string>();
    for (const o of (m[2] ?? "").trim().split(/\s+/)) {
      const eq = o.indexOf("=");
      if (eq > 0) opts.set(o.slice(0, eq).toLowerCase(), o.slice(eq + 1));
    }
    const signedBy = opts.get("signed-by");
    out.push({ file, types: [m[1]!], uris: [m[3]!], suites: [m[4]!], components: (m[5] ?? "").split(/\s+/).filter(Boolean), ...(signedBy ? { signedBy } : {}), enabled: true });
  }
  return out;
}

/** Parses deb822 `.sources` paragraphs (continuation lines kept for Signed-By). */
export function parseDeb822Sources(text: string, file = "x.sources"): AptSource[] {
  const out: AptSource[] = [];
  for (const para of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let key: string | undefined;
    for (const line of para.split("\n")) {
      if (line.startsWith("#")) continue;
      if (/^[ \t]/.test(line) && key) {
        fields.set(key, `${fields.get(key)}\n${line}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):[ \t]*(.*)$/.exec(line);
      if (!m) continue;
      key = m[1]!.toLowerCase();
      fields.set(key, m[2]!);
    }
    const words = (k: string) => (fields.get(k) ?? "").split(/\s+/).filter(Boolean);
    if (!fields.has("types") || !fields.has("uris")) continue;
    // an inline key keeps its lines as written: the value starts with "\n" and each line with a space
    const rawSigned = fields.get("signed-by")?.trimEnd();
    const signedBy = rawSigned?.includes("\n") ? rawSigned : rawSigned?.trim();
    out.push({
      file,
      types: words("types"),
      uris: words("uris"),
      suites: words("suites"),
      components: words("components"),
      ...(signedBy ? { signedBy } : {}),
      enabled: !/^(no|false|0)$/i.test((fields.get("enabled") ?? "yes").trim()),
    });
  }
  return out;
}

/** Every entry of the machine's sources (missing files are skipped). */
export function readAptSources(sourcesFile: string, sourcesDir: string): AptSource[] {
  const out: AptSource[] = [];
  try {
    out.push(...parseOneLineSources(readFileSync(sourcesFile, "utf8"), sourcesFile));
  } catch {
    // no sources.list (Debian 12 images use debian.sources only)
  }
  let names: string[] = [];
  try {
    names = readdirSync(sourcesDir).sort();
  } catch {
    // no sources dir
  }
  for (const n of names) {
    const p = join(sourcesDir, n);
    try {
      if (n.endsWith(".list")) out.push(...parseOneLineSources(readFileSync(p, "utf8"), p));
      else if (n.endsWith(".sources")) out.push(...parseDeb822Sources(readFileSync(p, "utf8"), p));
    } catch {
      // unreadable: skip
    }
  }
  return out;
}

export interface OsInfo {
  id: string;
  idLike: string[];
  codename?: string;
}

export function parseOsRelease(text: string): OsInfo {
  const get = (k: string) => new RegExp(`^${k}=["']?([^"'\\n]*)["']?$`, "m").exec(text)?.[1];
  const codename = get("VERSION_CODENAME") || get("UBUNTU_CODENAME");
  return { id: get("ID") ?? "", idLike: (get("ID_LIKE") ?? "").split(/\s+/).filter(Boolean), ...(codename ? { codename } : {}) };
}

/** The distribution's family for choosing suites: "debian", "ubuntu", or undefined. */
export function familyOf(os: OsInfo): "debian" | "ubuntu" | undefined {
  if (os.id === "ubuntu" || os.idLike.includes("ubuntu")) return "ubuntu";
  if (os.id === "debian" || os.idLike.includes("debian")) return "debian";
  return undefined;
}

/**
 * Suites to try, newest first. Debian: the aliases unstable (sid), testing
 * (forky today) and stable (trixie today) — aliases keep naming the newest
 * suites after every release. Ubuntu: the development series (`devel`).
 */
export function suitesFor(family: "debian" | "ubuntu"): string[] {
  return family === "ubuntu" ? ["devel"] : ["unstable", "testing", "stable"];
}

/**
 * The distribution's main archive among the sources: a `deb` entry whose
 * suites include the release's own codename (so not `-security`,
 * `-updates`, `-backports`) with component `main`; among those, one signed by
 * the distribution's archive keyring or whose path is `/debian` or `/ubuntu`
 * first. Without a codename, any entry with `main` and a suite without `-`.
 */
export function pickArchive(sources: readonly AptSource[], os: OsInfo): AptSource | undefined {
  const family = familyOf(os) ?? "debian";
  const eligible = sources.filter(
    (s) =>
      s.enabled &&
      s.types.includes("deb") &&
      s.components.includes("main") &&
      s.uris.some((u) => /^https?:\/\//.test(u)) &&
      (os.codename ? s.suites.includes(os.codename) : s.suites.some((x) => !x.includes("-") && !x.includes("/"))),
  );
  const score = (s: AptSource) =>
    (s.signedBy?.includes(`${family}-archive-keyring`) ? 2 : 0) + (s.uris.some((u) => new RegExp(`/${family}/?$`).test(u)) ? 1 : 0) - (s.uris.some((u) => /security/.test(u)) ? 4 : 0);
  return [...eligible].sort((a, b) => score(b) - score(a))[0];
}

/**
 * The private sources file (deb822) for one suite of the chosen archive.
 * Debian has nats-server in main; Ubuntu in universe.
 */
export function privateSource(archive: AptSource, suite: string, family: "debian" | "ubuntu" = "debian"): string {
  const components = family === "ubuntu" ? "main universe" : "main";
  const lines = ["Types: deb", `URIs: ${archive.uris.filter((u) => /^https?:\/\//.test(u)).join(" ")}`, `Suites: ${suite}`, `Components: ${components}`];
  if (archive.signedBy) lines.push(`Signed-By:${archive.signedBy.startsWith("\n") ? "" : " "}${archive.signedBy}`);
  return `${lines.join("\n")}\n`;
}

/** The `Acquire::` settings (proxy, timeouts, TLS) of the system's apt configuration, without its index targets. */
export function acquireSettings(dump: string): string[] {
  return dump
    .split("\n")
    .filter((l) => /^Acquire::/.test(l) && !/^Acquire::(IndexTargets|Languages|Changelogs)/.test(l) && /;\s*$/.test(l));
}

/**
 * The private apt configuration: every directory apt reads or writes points
 * into `root`, including its configuration parts (so no system hook such as
 * APT::Update::Post-Invoke runs). The dpkg status is an empty private file.
 */
export function privateAptConfig(root: string, acquire: readonly string[]): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    `Dir::Etc::SourceList ${q(join(root, "etc", "sources.list"))};`,
    `Dir::Etc::SourceParts ${q(join(root, "etc", "sources.list.d"))};`,
    `Dir::Etc::Parts ${q(join(root, "etc", "apt.conf.d"))};`,
    `Dir::Etc::Main ${q(join(root, "etc", "apt.conf"))};`,
    `Dir::Etc::Preferences ${q(join(root, "etc", "preferences"))};`,
    `Dir::Etc::PreferencesParts ${q(join(root, "etc", "preferences.d"))};`,
    `Dir::State ${q(join(root, "state"))};`,
    `Dir::State::Lists ${q(join(root, "state", "lists"))};`,
    `Dir::State::status ${q(join(root, "state", "status"))};`,
    `Dir::State::extended_states ${q(join(root, "state", "extended_states"))};`,
    `Dir::Cache ${q(join(root, "cache"))};`,
    `Dir::Cache::Archives ${q(join(root, "cache", "archives"))};`,
    `Dir::Log ${q(join(root, "log"))};`,
    // The private dirs belong to root (mkdtemp, 0700): download as root rather than as _apt.
    `APT::Sandbox::User "root";`,
    `Acquire::Languages "none";`,
    ...acquire,
    "",
  ].join("\n");
}

/** Highest `Version:` in `apt-cache show` output, as written (e.g. `2.15.1-1`). */
export function newestPackageVersion(showOutput: string): string | undefined {
  let best: string | undefined;
  for (const m of showOutput.matchAll(/^Version:\s*(\S+)/gm)) {
    const v = parseVersion(m[1]!);
    if (v && (!best || compareVersions(v, parseVersion(best)!) > 0)) best = m[1]!;
  }
  return best;
}

function run(cmd: string, args: string[], o: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): string {
  const r = spawnSync(cmd, args, { env: o.env, cwd: o.cwd, timeout: o.timeoutMs, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit ${r.status ?? r.signal}`;
    const tail = `${r.stderr ?? ""}`.trim().split("\n").slice(-3).join(" | ");
    throw new Error(`${cmd} ${args.join(" ")}: ${why}${tail ? ` (${tail})` : ""}`);
  }
  return r.stdout ?? "";
}

function findFile(dir: string, name: string): string | undefined {
  for (const sub of ["usr/sbin", "usr/bin", "sbin", "bin", "usr/local/bin"]) {
    const p = join(dir, sub, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Installs the newest nats-server >= MIN_VERSION from the newer suites of the
 * machine's own archive (see the file comment). Throws NatsServerMissing,
 * naming what was tried, when no suite offers one.
 */
export function installNatsServerFromApt(partial: Partial<AptInstallOptions> & Pick<AptInstallOptions, "cacheDir" | "log">): { path: string; version: string } {
  const o: AptInstallOptions = { ...APT_DEFAULTS, ...partial };
  const need = formatVersion(MIN_VERSION);
  let os: OsInfo = { id: "", idLike: [] };
  try {
    os = parseOsRelease(readFileSync(o.osRelease, "utf8"));
  } catch {
    // unknown: treated as Debian without a codename
  }
  const family = familyOf(os) ?? "debian";
  const archive = pickArchive(readAptSources(o.sourcesFile, o.sourcesDir), os);
  if (!archive) {
    throw new ShoalError("NatsServerMissing", `cannot install nats-server >= ${need}: no ${family} archive with component main for ${os.codename ?? "this release"} in ${o.sourcesFile} or ${o.sourcesDir}`);
  }
  let acquire: string[] = [];
  try {
    acquire = acquireSettings(execFileSync(o.aptConfig, ["dump"], { encoding: "utf8", timeout: 30_000, stdio: ["ignore", "pipe", "ignore"] }));
  } catch {
    // no apt-config: apt's defaults
  }
  const tried: string[] = [];
  for (const suite of o.suites ?? suitesFor(family)) {
    const root = mkdtempSync(join(o.tmpRoot, "shoal-apt-"));
    try {
      for (const d of ["etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial", "log", "download", "extract"]) mkdirSync(join(root, d), { recursive: true });
      writeFileSync(join(root, "state", "status"), "");
      writeFileSync(join(root, "etc", "sources.list.d", "shoal.sources"), privateSource(archive, suite, family));
      const conf = join(root, "apt.conf");
      writeFileSync(conf, privateAptConfig(root, acquire));
      const env = { ...process.env, APT_CONFIG: conf, DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" };
      const t = { env, timeoutMs: o.commandTimeoutMs };
      o.log(`shoal: looking for nats-server >= ${need} in ${archive.uris[0]} ${suite} (private apt configuration; system apt state untouched)…`);
      run(o.aptGet, ["-q", "update"], t);
      let show = "";
      try {
        show = run(o.aptCache, ["show", "nats-server"], t);
      } catch {
        // no such package in this suite
      }
      const pkgVersion = newestPackageVersion(show);
      const v = pkgVersion ? parseVersion(pkgVersion) : undefined;
      if (!v || !versionAtLeast(v, MIN_VERSION)) {
        tried.push(`${suite}: ${pkgVersion ?? "no nats-server"}`);
        continue;
      }
      run(o.aptGet, ["-q", "download", `nats-server=${pkgVersion}`], { ...t, cwd: join(root, "download") });
      const deb = readdirSync(join(root, "download")).find((f) => f.endsWith(".deb"));
      if (!deb) throw new Error("apt-get download left no .deb");
      run(o.dpkgDeb, ["-x", join(root, "download", deb), join(root, "extract")], t);
      const extracted = findFile(join(root, "extract"), "nats-server");
      if (!extracted) throw new Error(`${deb} has no nats-server binary`);
      const out = run(extracted, ["--version"], { ...t, timeoutMs: 10_000 });
      const got = parseVersion(out);
      if (!got || !versionAtLeast(got, MIN_VERSION) || !/nats-server/i.test(out)) throw new Error(`the extracted binary reports ${JSON.stringify(out.trim())}`);
      const dir = join(o.cacheDir, formatVersion(got));
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `.nats-server.${process.pid}`);
      copyFileSync(extracted, tmp);
      chmodSync(tmp, 0o755);
      renameSync(tmp, join(dir, "nats-server"));
      const path = join(dir, "nats-server");
      o.log(`shoal: installed nats-server ${formatVersion(got)} (Debian package ${pkgVersion} from ${suite}) at ${path}`);
      return { path, version: formatVersion(got) };
    } catch (e) {
      tried.push(`${suite}: ${(e as Error).message}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  throw new ShoalError("NatsServerMissing", `cannot install nats-server >= ${need} from ${archive.uris[0]} (tried ${tried.join("; ")})`);
}
