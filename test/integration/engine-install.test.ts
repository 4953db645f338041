/**
 * The nats-server installer (src/engine/install.ts): on injected paths and
 * fake apt commands, it reads the archive from the given sources, touches
 * only its private apt dirs, takes the newest suite whose package is new
 * enough, and leaves the sources as they were; then once for real (the
 * Debian archive is reachable in CI), into temp dirs, checking the system's
 * apt sources, lists and caches are unchanged.
 */
import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { installNatsServerFromApt, privateSource, parseDeb822Sources, parseOneLineSources, parseOsRelease, pickArchive, acquireSettings, newestPackageVersion } from "../../src/engine/install.ts";
import { ensureNatsServer, probeNatsServer } from "../../src/engine/binary.ts";
import { MIN_VERSION, parseVersion, versionAtLeast } from "../../src/engine/version.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { tempDir } from "../helpers/nats.ts";

const DEBIAN_SOURCES = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.example.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example.test/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;
const VENDOR_SOURCES = `Types: deb
URIs: https://vendor.example.test/node_20.x
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/vendor.gpg
`;
const VENDOR_LIST = "deb [signed-by=/usr/share/keyrings/v2.gpg] https://vendor2.example.test/apt bookworm stable\n";
const OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n';

test("sources: the main archive is picked from deb822 and one-line entries, not security or other vendors", (t) => {
  const os = parseOsRelease(OS_RELEASE);
  t.is(os.codename, "bookworm");
  const all = [...parseDeb822Sources(DEBIAN_SOURCES), ...parseDeb822Sources(VENDOR_SOURCES), ...parseOneLineSources(VENDOR_LIST)];
  t.is(all.length, 4);
  const a = pickArchive(all, os);
  t.deepEqual(a?.uris, ["http://deb.example.test/debian"]);
  t.is(a?.signedBy, "/usr/share/keyrings/debian-archive-keyring.gpg");
  // one-line form with options, and a disabled deb822 entry
  const one = parseOneLineSources("# c\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example.test/debian bookworm main contrib\n");
  t.deepEqual(pickArchive(one, os)?.uris, ["http://m.example.test/debian"]);
  t.is(one[0]?.signedBy, "/k.gpg");
  t.is(pickArchive(parseDeb822Sources(DEBIAN_SOURCES.replace("Types: deb\n#", "Enabled: no\nTypes: deb\n#")), os), undefined);
  // Ubuntu: its own archive, never the security pocket
  const u = parseOsRelease('ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n');
  const ul = parseOneLineSources("deb http://security.ubuntu.example.test/ubuntu noble-security main\ndeb http://archive.ubuntu.example.test/ubuntu noble main universe\n");
  t.deepEqual(pickArchive(ul, u)?.uris, ["http://archive.ubuntu.example.test/ubuntu"]);
  t.regex(privateSource(pickArchive(ul, u)!, "devel", "ubuntu"), /^Components: main universe$/m);
  t.regex(privateSource(pickArchive(all, os)!, "unstable"), /^Components: main$/m);
  // an inline key (deb822 continuation lines) is carried over as written
  const inline = parseDeb822Sources("Types: deb\nURIs: http://deb.example.test/debian\nSuites: bookworm\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n");
  t.regex(privateSource(pickArchive(inline, os)!, "unstable"), /^Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n \.\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n$/m);
});

test("apt config: the system's Acquire settings are kept, its index targets are not; the newest Version wins", (t) => {
  const dump = 'Acquire::http::Proxy "http://proxy.example.test:3128";\nAcquire::IndexTargets::deb::DEP-11::MetaKey "x";\nAPT::Update::Post-Invoke-Success:: "touch /x";\nDir::State "var/lib/apt";\n';
  t.deepEqual(acquireSettings(dump), ['Acquire::http::Proxy "http://proxy.example.test:3128";']);
  t.is(newestPackageVersion("Package: nats-server\nVersion: 2.10.27-1\n\nPackage: nats-server\nVersion: 2.15.1-1\n"), "2.15.1-1");
  t.is(newestPackageVersion(""), undefined);
});

/** A .deb holding a fake nats-server that reports `version`. */
function fakeDeb(dir: string, version: string): string {
  const pkg = join(dir, "pkg");
  mkdirSync(join(pkg, "DEBIAN"), { recursive: true });
  mkdirSync(join(pkg, "usr", "sbin"), { recursive: true });
  writeFileSync(join(pkg, "DEBIAN", "control"), `Package: nats-server\nVersion: ${version}-1\nArchitecture: all\nMaintainer: test <t@example.test>\nDescription: fake\n`);
  writeFileSync(join(pkg, "usr", "sbin", "nats-server"), `#!/bin/sh\necho "nats-server: v${version}"\n`);
  chmodSync(join(pkg, "usr", "sbin", "nats-server"), 0o755);
  const deb = join(dir, `nats-server_${version}-1_all.deb`);
  const r = spawnSync("dpkg-deb", ["--root-owner-group", "--build", pkg, deb], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return deb;
}

interface Fakes {
  aptGet: string;
  aptCache: string;
  aptConfig: string;
  /** One line per apt call: args, then the APT_CONFIG file's text and the private sources, saved. */
  log: string;
  saved: string;
}

/** apt-get / apt-cache / apt-config fakes: `versions` maps a suite to the package version it offers. */
function fakeApt(dir: string, deb: string, versions: Record<string, string>): Fakes {
  const log = join(dir, "calls.log");
  const saved = join(dir, "saved");
  mkdirSync(saved);
  const common = `set -e
echo "$0 $*" >> ${JSON.stringify(log)}
n=$(ls ${JSON.stringify(saved)} | wc -l)
cp "$APT_CONFIG" ${JSON.stringify(saved)}/$n.conf
parts=$(sed -n 's/^Dir::Etc::SourceParts "\\(.*\\)";$/\\1/p' "$APT_CONFIG")
cp "$parts/shoal.sources" ${JSON.stringify(saved)}/$n.sources
suite=$(sed -n 's/^Suites: //p' "$parts/shoal.sources")
`;
  const aptGet = join(dir, "apt-get");
  writeFileSync(aptGet, `#!/bin/sh\n${common}case "$2" in\n  update) exit 0 ;;\n  download) cp ${JSON.stringify(deb)} . ;;\n  *) exit 100 ;;\nesac\n`);
  const aptCache = join(dir, "apt-cache");
  const cases = Object.entries(versions).map(([s, v]) => `  ${s}) printf 'Package: nats-server\\nVersion: ${v}\\n\\n' ;;`).join("\n");
  writeFileSync(aptCache, `#!/bin/sh\n${common}case "$suite" in\n${cases}\n  *) echo "E: No packages found" >&2; exit 100 ;;\nesac\n`);
  const aptConfig = join(dir, "apt-config");
  writeFileSync(aptConfig, `#!/bin/sh\nprintf 'Acquire::http::Proxy "http://proxy.example.test:3128";\\nAcquire::IndexTargets::deb::DEP-11::MetaKey "x";\\nAPT::Update::Post-Invoke-Success:: "touch /tmp/never";\\n'\n`);
  for (const f of [aptGet, aptCache, aptConfig]) chmodSync(f, 0o755);
  return { aptGet, aptCache, aptConfig, log, saved };
}

function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, n);
    if (statSync(p).isFile()) out[n] = createHash("sha256").update(readFileSync(p)).digest("hex");
  }
  return out;
}

function fakeMachine(t: ExecutionContext) {
  const dir = tempDir(t);
  const etc = join(dir, "etc-apt");
  mkdirSync(join(etc, "sources.list.d"), { recursive: true });
  writeFileSync(join(etc, "sources.list"), VENDOR_LIST);
  writeFileSync(join(etc, "sources.list.d", "debian.sources"), DEBIAN_SOURCES);
  writeFileSync(join(etc, "sources.list.d", "vendor.sources"), VENDOR_SOURCES);
  writeFileSync(join(dir, "os-release"), OS_RELEASE);
  const tmpRoot = join(dir, "tmp");
  mkdirSync(tmpRoot);
  return { dir, etc, tmpRoot, cacheDir: join(dir, "cache", "shoal", "nats-server"), osRelease: join(dir, "os-release") };
}

const hasDpkgDeb = spawnSync("sh", ["-c", "command -v dpkg-deb"]).status === 0;

(hasDpkgDeb ? test : test.skip)("install (fake apt): private apt paths only, newest suite new enough, sources unchanged, binary in Shoal's dir", (t) => {
  const m = fakeMachine(t);
  const f = fakeApt(m.dir, fakeDeb(m.dir, "2.15.1"), { unstable: "2.10.27-1", testing: "2.15.1-1" });
  const before = hashTree(m.etc);
  const lines: string[] = [];
  const b = installNatsServerFromApt({
    cacheDir: m.cacheDir,
    log: (l) => lines.push(l),
    sourcesFile: join(m.etc, "sources.list"),
    sourcesDir: join(m.etc, "sources.list.d"),
    osRelease: m.osRelease,
    aptGet: f.aptGet,
    aptCache: f.aptCache,
    aptConfig: f.aptConfig,
    tmpRoot: m.tmpRoot,
  });
  t.is(b.version, "2.15.1");
  t.is(b.path, join(m.cacheDir, "2.15.1", "nats-server"));
  t.is(probeNatsServer(b.path)?.version, "2.15.1");
  // the machine's sources are as they were; the private dirs are gone
  t.deepEqual(hashTree(m.etc), before);
  t.deepEqual(readdirSync(m.tmpRoot), []);
  // unstable offered 2.10.27 (too old): testing was tried next, and its package downloaded
  const calls = readFileSync(f.log, "utf8").trim().split("\n").map((l) => l.replace(/^\S*\//, ""));
  t.deepEqual(calls, ["apt-get -q update", "apt-cache show nats-server", "apt-get -q update", "apt-cache show nats-server", "apt-get -q download nats-server=2.15.1-1"]);
  const saved = readdirSync(f.saved);
  for (const n of saved.filter((x) => x.endsWith(".conf"))) {
    const conf = readFileSync(join(f.saved, n), "utf8");
    // every Dir:: setting points into the private temp root
    const dirs = [...conf.matchAll(/^Dir::\S+ "(.*)";$/gm)].map((x) => x[1]!);
    t.true(dirs.length >= 12, conf);
    for (const d of dirs) t.true(d.startsWith(m.tmpRoot + "/"), d);
    for (const k of ["SourceList", "SourceParts", "Parts", "Main", "PreferencesParts"]) t.regex(conf, new RegExp(`^Dir::Etc::${k} `, "m"));
    for (const k of ["Dir::State::Lists", "Dir::State::status", "Dir::Cache ", "Dir::Cache::Archives"]) t.true(conf.includes(k), k);
    // the system's proxy is kept; its hooks and index targets are not
    t.regex(conf, /Acquire::http::Proxy "http:\/\/proxy\.example\.test:3128";/);
    t.notRegex(conf, /Post-Invoke|DEP-11/);
  }
  const sources = saved.filter((x) => x.endsWith(".sources")).sort((a, b) => parseInt(a) - parseInt(b)).map((n) => readFileSync(join(f.saved, n), "utf8"));
  t.regex(sources[0]!, /^URIs: http:\/\/deb\.example\.test\/debian$/m);
  t.regex(sources[0]!, /^Suites: unstable$/m);
  t.regex(sources[0]!, /^Signed-By: \/usr\/share\/keyrings\/debian-archive-keyring\.gpg$/m);
  t.regex(sources.at(-1)!, /^Suites: testing$/m);
  // the lookup now finds it in Shoal's dir (XDG_CACHE_HOME), with nothing on PATH
  const found = ensureNatsServer({ install: false, env: { PATH: join(m.dir, "empty"), XDG_CACHE_HOME: join(m.dir, "cache") }, searchDirs: [] });
  t.is(found.path, b.path);
  t.is(found.source, "cache");
});

(hasDpkgDeb ? test : test.skip)("install (fake apt): no suite new enough is NatsServerMissing naming each suite's version", (t) => {
  const m = fakeMachine(t);
  const f = fakeApt(m.dir, fakeDeb(m.dir, "2.10.27"), { unstable: "2.10.27-1", testing: "2.10.27-1" });
  const e = t.throws(
    () => installNatsServerFromApt({ cacheDir: m.cacheDir, log: () => undefined, sourcesFile: join(m.etc, "sources.list"), sourcesDir: join(m.etc, "sources.list.d"), osRelease: m.osRelease, aptGet: f.aptGet, aptCache: f.aptCache, aptConfig: f.aptConfig, tmpRoot: m.tmpRoot }),
    { instanceOf: ShoalError },
  );
  t.is(e?.code, "NatsServerMissing");
  t.regex(e!.message, /unstable: 2\.10\.27-1; testing: 2\.10\.27-1; stable: no nats-server/);
  t.regex(e!.message, />= 2\.14\.0/);
  t.false(existsSync(m.cacheDir));
  t.deepEqual(readdirSync(m.tmpRoot), []);
});

test("install: sources naming no main archive for this release is a clear NatsServerMissing", (t) => {
  const m = fakeMachine(t);
  writeFileSync(join(m.etc, "sources.list.d", "debian.sources"), "");
  const e = t.throws(() => installNatsServerFromApt({ cacheDir: m.cacheDir, log: () => undefined, sourcesFile: join(m.etc, "sources.list"), sourcesDir: join(m.etc, "sources.list.d"), osRelease: m.osRelease, aptGet: "/nonexistent/apt-get", tmpRoot: m.tmpRoot }), { instanceOf: ShoalError });
  t.is(e?.code, "NatsServerMissing");
  t.regex(e!.message, /no debian archive with component main for bookworm/);
});

// The real thing, once: Debian's archive (named by this machine's own sources)
// is reachable in CI. Only where it can run at all: Debian/Ubuntu as root.
const realApt =
  process.platform === "linux" &&
  process.getuid?.() === 0 &&
  existsSync("/etc/apt/sources.list.d") &&
  spawnSync("sh", ["-c", "command -v apt-get && command -v dpkg-deb"]).status === 0;

function listing(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

(realApt ? test : test.skip)("install (real apt, temp dirs): Debian's newest nats-server, and the system's apt sources, lists and caches unchanged", (t) => {
  const dir = tempDir(t);
  const sourcesBefore = hashTree("/etc/apt");
  const listsBefore = listing("/var/lib/apt/lists");
  const archivesBefore = listing("/var/cache/apt/archives");
  const units = ["/lib/systemd/system/nats-server.service", "/etc/systemd/system/nats-server.service"];
  const unitsBefore = units.map((u) => existsSync(u));
  const b = installNatsServerFromApt({ cacheDir: join(dir, "cache"), log: (l) => t.log(l), tmpRoot: dir, commandTimeoutMs: 90_000 });
  const v = parseVersion(b.version);
  t.true(v !== undefined && versionAtLeast(v, MIN_VERSION), b.version);
  t.is(probeNatsServer(b.path)?.version, b.version);
  t.true(b.path.startsWith(join(dir, "cache") + "/"));
  // /etc/apt byte for byte; no index of a newer suite and no package in the system's lists and caches
  t.deepEqual(hashTree("/etc/apt"), sourcesBefore);
  const newLists = listing("/var/lib/apt/lists").filter((n) => !listsBefore.includes(n));
  t.deepEqual(newLists.filter((n) => /_dists_(unstable|sid|testing|forky|stable|trixie)_/.test(n)), []);
  t.deepEqual(listing("/var/cache/apt/archives").filter((n) => !archivesBefore.includes(n) && /nats-server/.test(n)), []);
  t.deepEqual(units.map((u) => existsSync(u)), unitsBefore, "no service installed");
});
