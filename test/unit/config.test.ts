import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildConfig, configFromEnv, loadConfig, DEFAULTS } from "../../src/config.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { tempDir } from "../helpers/nats.ts";

test("defaults are valid and frozen", (t) => {
  const c = buildConfig();
  t.deepEqual(c, DEFAULTS);
  t.true(Object.isFrozen(c) && Object.isFrozen(c.nats) && Object.isFrozen(c.nats.servers));
  t.throws(() => {
    (c.runtime as { heartbeatMs: number }).heartbeatMs = 1;
  });
});

test("file < env < flags", (t) => {
  const dir = tempDir(t);
  const file = join(dir, "shoal.json");
  writeFileSync(file, JSON.stringify({ runtime: { heartbeatMs: 500 }, log: { level: "debug" }, storage: { defaultReplicas: 3 } }));
  const c = loadConfig({ file, env: { SHOAL_LOG_LEVEL: "warn", SHOAL_NATS_URL: "127.0.0.1:5000, nats://127.0.0.1:5001" }, flags: { log: { level: "error" } } });
  t.is(c.runtime.heartbeatMs, 500);
  t.is(c.runtime.presenceTtlMs, 1500, "presence TTL defaults to 3 heartbeats");
  t.is(c.storage.defaultReplicas, 3);
  t.is(c.log.level, "error");
  t.deepEqual(c.nats.servers, ["nats://127.0.0.1:5000", "nats://127.0.0.1:5001"]);
});

test("the metrics endpoint is off unless a port is set (env SHOAL_METRICS_PORT, 0 = a free port)", (t) => {
  t.is(buildConfig().metrics.port, undefined);
  t.is(loadConfig({ env: { SHOAL_METRICS_PORT: "0" } }).metrics.port, 0);
  t.is(loadConfig({ env: { SHOAL_METRICS_PORT: "9100", SHOAL_METRICS_HOST: "0.0.0.0" } }).metrics.host, "0.0.0.0");
});

test("the caller's input objects are not mutated", (t) => {
  const flags = { runtime: { heartbeatMs: 400 } };
  const copy = structuredClone(flags);
  buildConfig(flags);
  t.deepEqual(flags, copy);
});

for (const [name, input, path] of [
  ["unknown section", { nope: {} }, "nope"],
  ["unknown setting", { runtime: { heartbeat: 5 } }, "runtime.heartbeat"],
  ["replicas not 1/3/5", { storage: { defaultReplicas: 2 } }, "storage.defaultReplicas"],
  ["negative port", { dev: { natsPort: -5 } }, "dev.natsPort"],
  ["non-integer", { runtime: { heartbeatMs: "fast" } }, "runtime.heartbeatMs"],
  ["bad URL scheme", { nats: { servers: "http://nats.example" } }, "nats.servers[0]"],
  ["empty server list", { nats: { servers: [] } }, "nats.servers"],
  ["bad log level", { log: { level: "loud" } }, "log.level"],
  ["metrics port out of range", { metrics: { port: 70000 } }, "metrics.port"],
  ["metrics port not a number", { metrics: { port: "ninety" } }, "metrics.port"],
  ["presence TTL not above heartbeat", { runtime: { heartbeatMs: 1000, presenceTtlMs: 900 } }, "runtime.presenceTtlMs"],
  ["console port out of range", { console: { port: 70000 } }, "console.port"],
  ["console public URL not http(s)", { console: { publicUrl: "ftp://s3.example.com" } }, "console.publicUrl"],
  ["console public URL with a path", { console: { publicUrl: "https://example.com/s3" } }, "console.publicUrl"],
] as const) {
  test(`invalid config is a typed error: ${name}`, (t) => {
    const e = t.throws(() => buildConfig(input as never), { instanceOf: ShoalError });
    t.is(e?.code, "InvalidConfig");
    t.true(e?.message.includes(path), e?.message);
  });
}

test("a config file that is not JSON is a typed error naming the file", (t) => {
  const file = join(tempDir(t), "bad.json");
  writeFileSync(file, "{ nope");
  const e = t.throws(() => loadConfig({ file, env: {} }), { instanceOf: ShoalError });
  t.is(e?.code, "InvalidConfig");
  t.true(e?.message.includes(file));
});

test("console settings: defaults, env, and a public URL reduced to its origin", (t) => {
  const d = buildConfig();
  t.is(d.console.port, 9001);
  t.is(d.console.publicUrl, undefined);
  const c = buildConfig(configFromEnv({ SHOAL_CONSOLE_PORT: "0", SHOAL_PUBLIC_URL: "https://s3.example.com:8443/" }));
  t.is(c.console.port, 0);
  t.is(c.console.publicUrl, "https://s3.example.com:8443");
});

test("env mapping ignores empty variables", (t) => {
  const c = buildConfig(configFromEnv({ SHOAL_NATS_URL: "", SHOAL_HEARTBEAT_MS: "250" }));
  t.deepEqual(c.nats.servers, DEFAULTS.nats.servers);
  t.is(c.runtime.heartbeatMs, 250);
});

test("storage: replicas default to 0 (the cluster's count), readGraceMs to 10 min; both settable by env", (t) => {
  t.is(buildConfig().storage.defaultReplicas, 0);
  t.is(buildConfig().storage.readGraceMs, 600_000);
  const c = loadConfig({ env: { SHOAL_DEFAULT_REPLICAS: "1", SHOAL_READ_GRACE_MS: "0" } });
  t.is(c.storage.defaultReplicas, 1);
  t.is(c.storage.readGraceMs, 0);
  t.throws(() => buildConfig({ storage: { readGraceMs: -1 } }), { instanceOf: ShoalError, message: /storage.readGraceMs/ });
});

test("runtime.heapGrowingPercent: 300 by default, SHOAL_HEAP_GROWING_PERCENT sets it (0 = V8's heuristic), out of range is InvalidConfig", (t) => {
  t.is(buildConfig().runtime.heapGrowingPercent, 300);
  t.is(loadConfig({ env: { SHOAL_HEAP_GROWING_PERCENT: "0" } }).runtime.heapGrowingPercent, 0);
  t.is(loadConfig({ env: { SHOAL_HEAP_GROWING_PERCENT: "150" } }).runtime.heapGrowingPercent, 150);
  for (const bad of ["-1", "1001", "lots"]) t.throws(() => loadConfig({ env: { SHOAL_HEAP_GROWING_PERCENT: bad } }), { instanceOf: ShoalError, message: /heapGrowingPercent/ });
});
