import test from "ava";
import { parseVersion, versionAtLeast, candidatePaths } from "../../src/engine/binary.ts";
import { renderServerConfig } from "../../src/engine/config.ts";

test("parseVersion reads nats-server --version output", (t) => {
  t.deepEqual(parseVersion("nats-server: v2.9.10"), [2, 9, 10]);
  t.deepEqual(parseVersion("nats-server: v2.10.0-beta.3"), [2, 10, 0]);
  t.is(parseVersion("garbage"), undefined);
});

test("versionAtLeast compares numerically", (t) => {
  t.true(versionAtLeast([2, 9, 10], [2, 9]));
  t.true(versionAtLeast([2, 10, 0], [2, 9]));
  t.false(versionAtLeast([2, 8, 4], [2, 9]));
  t.false(versionAtLeast([1, 99, 0], [2, 9]));
});

test("candidatePaths puts SHOAL_NATS_SERVER first and includes /usr/sbin", (t) => {
  const c = candidatePaths({ SHOAL_NATS_SERVER: "/opt/x/nats-server", PATH: "/a:/b" });
  t.is(c[0], "/opt/x/nats-server");
  t.true(c.includes("/a/nats-server"));
  t.true(c.includes("/usr/sbin/nats-server"));
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

test("when nats-server is missing and cannot be installed, the error says exactly how to install it", async (t) => {
  const { ensureNatsServer } = await import("../../src/engine/binary.ts");
  const { ShoalError } = await import("../../src/errors/index.ts");
  // An environment where no candidate exists: empty PATH, an explicit path that is not there, no extra dirs.
  // install:false stands for "not Debian as root": the same branch.
  const env = { PATH: "/nonexistent", SHOAL_NATS_SERVER: "/nonexistent/nats-server" };
  const e = t.throws(() => ensureNatsServer({ install: false, env, searchDirs: [] }), { instanceOf: ShoalError });
  t.is(e?.code, "NatsServerMissing");
  t.regex(e!.message, /apt-get install -y nats-server/);
  t.regex(e!.message, /SHOAL_NATS_SERVER/);
});

test("installHint names apt-get, brew, the release page and SHOAL_NATS_SERVER", async (t) => {
  const { installHint } = await import("../../src/engine/binary.ts");
  const h = installHint();
  for (const s of ["apt-get install -y nats-server", "brew install nats-server", "nats-server/releases", "SHOAL_NATS_SERVER"]) t.true(h.includes(s), s);
});

test("a nats-server older than 2.9 is refused with the install hint", async (t) => {
  const { ensureNatsServer } = await import("../../src/engine/binary.ts");
  const { writeFileSync, chmodSync, mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "shoal-old-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fake = join(dir, "nats-server");
  writeFileSync(fake, "#!/bin/sh\necho 'nats-server: v2.8.4'\n");
  chmodSync(fake, 0o755);
  const e = t.throws(() => ensureNatsServer({ install: false, env: { PATH: dir }, searchDirs: [] }));
  t.regex(e!.message, /2\.8\.4 .* too old/);
});
