import test, { type ExecutionContext } from "ava";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseVersion, versionAtLeast, candidatePaths, ensureNatsServer, installHint, shoalEngineDir } from "../../src/engine/binary.ts";
import { assertServerVersion } from "../../src/engine/version.ts";
import { renderServerConfig } from "../../src/engine/config.ts";
import { connectNats } from "../../src/connect.ts";
import type { NatsConfig } from "../../src/config.ts";
import { renderStatus } from "../../src/cli/status-command.ts";
import { ShoalError } from "../../src/errors/index.ts";

test("parseVersion reads nats-server --version output", (t) => {
  t.deepEqual(parseVersion("nats-server: v2.9.10"), [2, 9, 10]);
  t.deepEqual(parseVersion("nats-server: v2.10.0-beta.3"), [2, 10, 0]);
  t.deepEqual(parseVersion("2.15.1-1"), [2, 15, 1]);
  t.is(parseVersion("garbage"), undefined);
});

test("versionAtLeast compares numerically", (t) => {
  t.true(versionAtLeast([2, 9, 10], [2, 9]));
  t.true(versionAtLeast([2, 10, 0], [2, 9]));
  t.false(versionAtLeast([2, 8, 4], [2, 9]));
  t.false(versionAtLeast([1, 99, 0], [2, 9]));
  t.false(versionAtLeast([2, 13, 99], [2, 14, 0]));
  t.true(versionAtLeast([2, 14, 0], [2, 14, 0]));
});

test("candidatePaths: SHOAL_NATS_SERVER, then PATH and the sbin dirs, then Shoal's dir (XDG_CACHE_HOME), newest first", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "shoal-cache-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const v of ["2.14.0", "2.15.1", "2.9.10", "junk"]) mkdirSync(join(dir, "shoal", "nats-server", v), { recursive: true });
  const c = candidatePaths({ SHOAL_NATS_SERVER: "/opt/x/nats-server", PATH: "/a:/b", XDG_CACHE_HOME: dir });
  t.is(c[0], "/opt/x/nats-server");
  t.is(c[1], "/a/nats-server");
  t.true(c.includes("/usr/sbin/nats-server"));
  const cached = c.filter((p) => p.startsWith(dir));
  t.deepEqual(cached, ["2.15.1", "2.14.0", "2.9.10"].map((v) => join(dir, "shoal", "nats-server", v, "nats-server")));
  t.true(c.indexOf("/usr/sbin/nats-server") < c.indexOf(cached[0]!));
  t.is(shoalEngineDir({ HOME: "/home/u" }), "/home/u/.cache/shoal/nats-server");
  t.is(shoalEngineDir({ HOME: "/home/u", XDG_CACHE_HOME: "relative" }), "/home/u/.cache/shoal/nats-server");
});

test("renderServerConfig quotes values and writes cluster routes", (t) => {
  const text = renderServerConfig({
    serverName: 'n"1',
    host: "127.0.0.1",
    port: -1,
    httpPort: -1,
    portsFileDir: "/tmp/x",
    storeDir: "/tmp/x",
    auth: { sysUser: "sys", sysPassword: "p", appUser: "shoal", appPassword: "q" },
    cluster: { name: "c", port: 1234, routes: ["nats-route://127.0.0.1:5678"] },
  });
  t.regex(text, /server_name: "n\\"1"/);
  t.regex(text, /listen: "127\.0\.0\.1:-1"/);
  t.regex(text, /"nats-route:\/\/127\.0\.0\.1:5678"/);
  t.regex(text, /system_account: SYS/);
  t.regex(text, /no_auth_user: "shoal"/);
});

/** A directory with a fake `nats-server` reporting `version`. */
function fakeServerDir(t: ExecutionContext, version: string, sub = ""): string {
  const dir = mkdtempSync(join(tmpdir(), "shoal-fake-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, sub), { recursive: true });
  const fake = join(dir, sub, "nats-server");
  writeFileSync(fake, `#!/bin/sh\necho 'nats-server: v${version}'\n`);
  chmodSync(fake, 0o755);
  return dir;
}

test("when nats-server is missing and cannot be installed, the error says how to get one and the version needed", (t) => {
  const env = { PATH: "/nonexistent", XDG_CACHE_HOME: "/nonexistent" };
  const e = t.throws(() => ensureNatsServer({ install: false, env, searchDirs: [] }), { instanceOf: ShoalError });
  t.is(e?.code, "NatsServerMissing");
  t.regex(e!.message, />= 2\.14\.0/);
  t.regex(e!.message, /shoal setup/);
  t.regex(e!.message, /SHOAL_NATS_SERVER/);
  // "cannot install" (not Debian, or not root) takes the same branch
  t.is(t.throws(() => ensureNatsServer({ canInstall: false, env, searchDirs: [] }))?.message, e!.message);
});

test("installHint names the version, shoal setup, brew, the release page and SHOAL_NATS_SERVER", (t) => {
  const h = installHint();
  for (const s of [">= 2.14.0", "shoal setup", "brew install nats-server", "nats-server/releases", "SHOAL_NATS_SERVER"]) t.true(h.includes(s), s);
});

test("a nats-server older than the minimum is refused with a message naming both versions", (t) => {
  const dir = fakeServerDir(t, "2.9.10");
  const e = t.throws(() => ensureNatsServer({ install: false, env: { PATH: dir, XDG_CACHE_HOME: "/nonexistent" }, searchDirs: [] }), { instanceOf: ShoalError });
  t.is(e?.code, "NatsServerTooOld");
  t.regex(e!.message, /nats-server 2\.9\.10 at .*nats-server, but Shoal needs nats-server >= 2\.14\.0/);
  // SHOAL_NATS_SERVER is authoritative: too old is refused even when a newer one is on PATH
  const newer = fakeServerDir(t, "2.15.1");
  const e2 = t.throws(() => ensureNatsServer({ install: false, env: { SHOAL_NATS_SERVER: join(dir, "nats-server"), PATH: newer }, searchDirs: [] }), { instanceOf: ShoalError });
  t.is(e2?.code, "NatsServerTooOld");
  t.regex(e2!.message, /2\.9\.10.*2\.14\.0/s);
  const e3 = t.throws(() => ensureNatsServer({ install: false, env: { SHOAL_NATS_SERVER: "/nonexistent/nats-server", PATH: newer }, searchDirs: [] }), { instanceOf: ShoalError });
  t.is(e3?.code, "NatsServerMissing");
});

test("a too-old server on PATH is passed over for a new enough one in Shoal's dir", (t) => {
  const old = fakeServerDir(t, "2.9.10");
  const cache = fakeServerDir(t, "2.15.1", "shoal/nats-server/2.15.1");
  const b = ensureNatsServer({ install: false, env: { PATH: old, XDG_CACHE_HOME: cache }, searchDirs: [] });
  t.is(b.version, "2.15.1");
  t.is(b.source, "cache");
  t.is(b.path, join(cache, "shoal/nats-server/2.15.1/nats-server"));
  // and PATH wins when it is new enough
  const onPath = fakeServerDir(t, "2.14.3");
  t.is(ensureNatsServer({ install: false, env: { PATH: onPath, XDG_CACHE_HOME: cache }, searchDirs: [] }).source, "PATH");
});

test("assertServerVersion: a server's INFO version below the minimum is NatsServerTooOld naming both", (t) => {
  t.notThrows(() => assertServerVersion("2.15.1", "x"));
  t.notThrows(() => assertServerVersion("2.14.0", "x"));
  for (const v of ["2.9.10", "2.13.9", undefined, "garbage"]) {
    const e = t.throws(() => assertServerVersion(v, "nats://h:1"), { instanceOf: ShoalError });
    t.is(e?.code, "NatsServerTooOld");
    t.regex(e!.message, /older than 2\.14\.0/);
    if (v) t.true(e!.message.includes(`nats-server ${v} at nats://h:1`));
  }
});

test("connectNats refuses a server whose INFO reports an older version, and closes the connection", async (t) => {
  // A peer that speaks only the greeting of the NATS protocol (INFO, then PONG
  // to PING): enough to test the client-side check without an old binary.
  const sockets = new Set<Socket>();
  let closed = 0;
  const srv = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => closed++);
    sock.write(`INFO {"server_id":"FAKE","server_name":"old","version":"2.9.10","proto":1,"go":"go1","host":"127.0.0.1","port":0,"headers":true,"max_payload":1048576}\r\n`);
    sock.on("data", (d) => {
      if (/PING/.test(d.toString())) sock.write("PONG\r\n");
    });
    sock.on("error", () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  const port = (srv.address() as AddressInfo).port;
  const e = await t.throwsAsync(() => connectNats({ servers: [`nats://127.0.0.1:${port}`] } as NatsConfig, { options: { maxReconnectAttempts: 0 } }), { instanceOf: ShoalError });
  t.is(e?.code, "NatsServerTooOld");
  t.regex(e!.message, /nats-server 2\.9\.10 at 127\.0\.0\.1:\d+ is older than 2\.14\.0/);
  for (let i = 0; i < 100 && closed === 0; i++) await sleep(20);
  t.is(closed, 1, "the connection was closed");
});

test("shoal status shows the engine's version and marks servers older than the minimum", (t) => {
  const view = { healthy: true, time: "t", servers: [{ name: "n1", up: true, version: "2.15.1" }, { name: "n2", up: true, version: "2.9.10" }], streams: [], underReplicated: [], actors: [], alerts: [] };
  const out = renderStatus(view, { version: "2.15.1", minimum: "2.14.0" });
  t.regex(out, /^Engine: nats-server 2\.15\.1 \(Shoal needs >= 2\.14\.0\)$/m);
  t.regex(out, /^n1\s+up\s+2\.15\.1\s/m);
  t.regex(out, /^n2\s+up\s+2\.9\.10 \(TOO OLD\)/m);
});

test("when installing fails after only older servers were found, the error names both versions and why the install failed", (t) => {
  const old = fakeServerDir(t, "2.9.10");
  const lines: string[] = [];
  const e = t.throws(
    () =>
      ensureNatsServer({
        canInstall: true,
        log: (l) => lines.push(l),
        env: { PATH: old, XDG_CACHE_HOME: join(old, "cache") },
        searchDirs: [],
        // no apt sources at all: the installer stops before running any apt command
        apt: { sourcesFile: "/nonexistent/sources.list", sourcesDir: "/nonexistent/sources.list.d", aptGet: "/nonexistent/apt-get" },
      }),
    { instanceOf: ShoalError },
  );
  t.is(e?.code, "NatsServerTooOld");
  t.regex(e!.message, /nats-server 2\.9\.10 at .*, but Shoal needs nats-server >= 2\.14\.0\. Installing a newer one failed: cannot install nats-server >= 2\.14\.0: no \w+ archive/);
  t.regex(lines.join("\n"), /2\.9\.10 .* is older than 2\.14\.0; installing a newer one for Shoal/);
});
