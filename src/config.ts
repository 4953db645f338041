/**
 * One validated, frozen configuration. Sources, later ones winning:
 * built-in defaults < a JSON file (`--config FILE` or SHOAL_CONFIG) <
 * environment (SHOAL_*) < command-line flags. Each part of Shoal receives
 * only its own slice (`config.nats`, `config.runtime`, …), never the whole.
 */
import { readFileSync } from "node:fs";
import { ShoalError } from "./errors/index.ts";

export interface NatsConfig {
  /** Server URLs, comma-separated in env/flags. */
  readonly servers: readonly string[];
  readonly user?: string;
  readonly pass?: string;
  /** Path of a NATS .creds file (JWT auth). */
  readonly creds?: string;
  /** System-account user for $SYS requests (health-monitor). */
  readonly sysUser?: string;
  readonly sysPass?: string;
}

export interface RuntimeConfig {
  readonly heartbeatMs: number;
  readonly presenceTtlMs: number;
  readonly drainTimeoutMs: number;
  /** V8's old-generation growth in `shoal dev` / `shoal start`, percent (src/runtime/gc.ts); 0 = V8's own heuristic. */
  readonly heapGrowingPercent: number;
}

export interface StorageConfig {
  /** Replica count of a bucket created without one: 1, 3 or 5; 0 (the default) = the cluster's, up to 3 (1 on a single server). */
  readonly defaultReplicas: 0 | 1 | 3 | 5;
  /** Delete markers older than this are purged by the sweep. */
  readonly markerTtlMs: number;
  /** Chunks no metadata refers to, last written longer ago than this, are purged by the sweep. */
  readonly orphanGraceMs: number;
  /** A version replaced (overwritten or deleted) keeps its chunks this long, so reads already streaming it finish. */
  readonly readGraceMs: number;
  /**
   * The read grace when JetStream refuses a write for want of storage
   * (InsufficientStorage): the storage instance that saw it sweeps every
   * bucket at once with this grace instead of readGraceMs (at most once per
   * PRESSURE_SWEEP_GAP_MS), so that replaced versions stop filling the store.
   */
  readonly pressureReadGraceMs: number;
  /** How often each storage instance sweeps every bucket; 0 = never (on request only). */
  readonly sweepIntervalMs: number;
  /** Multipart uploads neither completed nor aborted are removed after this long. */
  readonly multipartMaxAgeMs: number;
  /**
   * A composed multipart object still not copied into the stock form this
   * long after its completion is copied by the sweep; one whose copy then
   * fails is reported stalled (health alert `restate-stalled`).
   */
  readonly restateAfterMs: number;
  /** The first sweep after a start comes this long after it (jittered), or after sweepIntervalMs if shorter. */
  readonly firstSweepMs: number;
}

export interface DevConfig {
  /** Where `shoal dev` keeps the nats-server data and generated credentials. */
  readonly dataDir: string;
  /** Client port of the dev server: 4222 by default (a free port when taken); 0 = a free port. */
  readonly natsPort: number;
  /** 1 (default) or a local N-node cluster. */
  readonly servers: number;
}

export interface GatewayConfig {
  /** Address the S3 gateway listens on. */
  readonly host: string;
  /** Its port; 0 = a free port. */
  readonly port: number;
  /** The region clients sign for (SigV4 scope). */
  readonly region: string;
  /** Access key pair; `shoal dev` generates one when none is set. */
  readonly accessKey?: string;
  readonly secretKey?: string;
  /** Base domains for virtual-hosted-style addressing (`<bucket>.<domain>`), comma-separated in env/flags. */
  readonly domains: readonly string[];
  /** Largest single PUT (S3: 5 GiB). */
  readonly maxPutBytes: number;
}

export interface ConsoleConfig {
  /** Address the web console listens on (served by the gateway process). */
  readonly host: string;
  /** Its port: 9001 by default; 0 = a free port. */
  readonly port: number;
  /** The S3 endpoint's public address, which share links are signed for (default: the gateway's own URL). */
  readonly publicUrl?: string;
  /** A session ends this long after login, whatever happens. */
  readonly sessionTtlMs: number;
  /** A session ends after this long without a request. */
  readonly idleTtlMs: number;
  /** PEM files: with both, the console serves HTTPS (and its cookie is Secure). */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

export interface HealthConfig {
  /** How often the health-monitor looks. */
  readonly intervalMs: number;
  /** A condition must hold (or be gone) this long before an alert is raised (or resolved). */
  readonly debounceMs: number;
  /** A server down this long triggers a repair request to the rebalancer. */
  readonly repairGraceMs: number;
  /** Used storage over this fraction of a server's limit raises storage-near-limit. */
  readonly storageWarnRatio: number;
  /** Optional: POST every alert raised or resolved here (JSON), with retries. */
  readonly webhookUrl?: string;
}

export interface MetricsConfig {
  /** Address of the metrics endpoint of a process without a gateway. */
  readonly host: string;
  /** Its port (0 = a free port); unset = no endpoint (the gateway serves /metrics itself). */
  readonly port?: number;
}

export interface ShoalConfig {
  readonly nats: NatsConfig;
  readonly runtime: RuntimeConfig;
  readonly storage: StorageConfig;
  readonly dev: DevConfig;
  readonly gateway: GatewayConfig;
  readonly health: HealthConfig;
  readonly console: ConsoleConfig;
  readonly metrics: MetricsConfig;
  readonly log: { readonly level: string };
}

export const DEFAULTS: ShoalConfig = deepFreeze({
  nats: { servers: ["nats://127.0.0.1:4222"] },
  runtime: { heartbeatMs: 2000, presenceTtlMs: 6000, drainTimeoutMs: 10_000, heapGrowingPercent: 300 },
  storage: { defaultReplicas: 0, markerTtlMs: 3_600_000, orphanGraceMs: 3_600_000, readGraceMs: 600_000, pressureReadGraceMs: 30_000, sweepIntervalMs: 600_000, multipartMaxAgeMs: 7 * 86_400_000, restateAfterMs: 60_000, firstSweepMs: 30_000 },
  dev: { dataDir: ".shoal/data", natsPort: 4222, servers: 1 },
  gateway: { host: "127.0.0.1", port: 9000, region: "us-east-1", domains: ["localhost"], maxPutBytes: 5 * 1024 ** 3 },
  health: { intervalMs: 1000, debounceMs: 3000, repairGraceMs: 180_000, storageWarnRatio: 0.9 },
  console: { host: "127.0.0.1", port: 9001, sessionTtlMs: 8 * 3_600_000, idleTtlMs: 3_600_000 },
  metrics: { host: "127.0.0.1" },
  log: { level: "info" },
});

/** Loose input: what a file, env or flags may set (all optional, any depth). */
export type ConfigInput = { [K in keyof ShoalConfig]?: { -readonly [P in keyof ShoalConfig[K]]?: unknown } };

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function fail(path: string, why: string): never {
  throw new ShoalError("InvalidConfig", `config ${path}: ${why}`);
}

function int(path: string, v: unknown, min: number, max: number): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) fail(path, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
}

function optInt(path: string, v: unknown, min: number, max: number): number | undefined {
  return v === undefined ? undefined : int(path, v, min, max);
}

function str(path: string, v: unknown): string {
  if (typeof v !== "string" || v === "") fail(path, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function urls(path: string, v: unknown): string[] {
  const list = typeof v === "string" ? v.split(",").map((s) => s.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length === 0) fail(path, "must list at least one server URL");
  return list.map((u, i) => {
    const s = str(`${path}[${i}]`, u);
    const withScheme = /^[a-z]+:\/\//i.test(s) ? s : `nats://${s}`;
    let parsed: URL;
    try {
      parsed = new URL(withScheme);
    } catch {
      fail(`${path}[${i}]`, `not a URL: ${JSON.stringify(s)}`);
    }
    if (!["nats:", "tls:", "ws:", "wss:"].includes(parsed.protocol)) fail(`${path}[${i}]`, `unsupported scheme ${parsed.protocol}`);
    return withScheme;
  });
}

function list(path: string, v: unknown): string[] {
  const l = typeof v === "string" ? v.split(",").map((x) => x.trim()).filter(Boolean) : v;
  if (!Array.isArray(l)) fail(path, "must be a list of strings");
  return l.map((x, i) => str(`${path}[${i}]`, x));
}

function ratio(path: string, v: unknown): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof n !== "number" || !(n > 0 && n <= 1)) fail(path, `must be a number in (0, 1], got ${JSON.stringify(v)}`);
  return n;
}

function webhook(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    fail("health.webhookUrl", `not a URL: ${JSON.stringify(v)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") fail("health.webhookUrl", "must be http(s)");
  return v;
}

function httpUrl(path: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    fail(path, `not a URL: ${JSON.stringify(v)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") fail(path, "must be an http:// or https:// URL");
  if (u.search || u.hash || u.username || u.password || u.pathname !== "/") fail(path, "must be a scheme, host and optional port only (no path, query, fragment or credentials)");
  return u.origin;
}

function keyPair(accessKey: string | undefined, secretKey: string | undefined): { accessKey?: string; secretKey?: string } {
  if ((accessKey === undefined) !== (secretKey === undefined)) fail("gateway.accessKey", "set both the access key and the secret key, or neither");
  if (accessKey === undefined || secretKey === undefined) return {};
  if (!/^[A-Za-z0-9+/=._-]{3,128}$/.test(accessKey)) fail("gateway.accessKey", "3 to 128 characters of A-Z a-z 0-9 + / = . _ -");
  if (secretKey.length < 8) fail("gateway.secretKey", "must be at least 8 characters");
  return { accessKey, secretKey };
}

function pick<T>(layers: ConfigInput[], section: keyof ShoalConfig, key: string, fallback: T): unknown {
  let v: unknown = fallback;
  for (const l of layers) {
    const sec = l[section] as Record<string, unknown> | undefined;
    if (sec && sec[key] !== undefined) v = sec[key];
  }
  return v;
}

/** Builds and validates a config from layers (earliest first). Throws InvalidConfig. */
export function buildConfig(...layers: ConfigInput[]): ShoalConfig {
  for (const l of layers) {
    for (const [section, body] of Object.entries(l)) {
      if (!(section in DEFAULTS)) fail(section, "unknown section");
      if (body === undefined) continue;
      if (typeof body !== "object" || body === null || Array.isArray(body)) fail(section, "must be an object");
      const known = DEFAULTS[section as keyof ShoalConfig] as object;
      const optional = section === "nats" ? ["user", "pass", "creds", "sysUser", "sysPass"] : section === "gateway" ? ["accessKey", "secretKey"] : section === "health" ? ["webhookUrl"] : section === "metrics" ? ["port"] : section === "console" ? ["publicUrl", "tlsCert", "tlsKey"] : [];
      for (const k of Object.keys(body)) if (!(k in known) && !optional.includes(k)) fail(`${section}.${k}`, "unknown setting");
    }
  }
  const g = (s: keyof ShoalConfig, k: string) => pick(layers, s, k, (DEFAULTS[s] as Record<string, unknown>)[k]);
  const opt = (s: keyof ShoalConfig, k: string) => {
    const v = pick(layers, s, k, undefined);
    return v === undefined ? undefined : str(`${s}.${k}`, v);
  };
  const heartbeatMs = int("runtime.heartbeatMs", g("runtime", "heartbeatMs"), 50, 60_000);
  const presenceTtlRaw = pick(layers, "runtime", "presenceTtlMs", undefined);
  const presenceTtlMs = presenceTtlRaw === undefined ? heartbeatMs * 3 : int("runtime.presenceTtlMs", presenceTtlRaw, 100, 600_000);
  if (presenceTtlMs <= heartbeatMs) fail("runtime.presenceTtlMs", "must be longer than runtime.heartbeatMs");
  const replicas = int("storage.defaultReplicas", g("storage", "defaultReplicas"), 0, 5);
  if (replicas !== 0 && replicas !== 1 && replicas !== 3 && replicas !== 5) fail("storage.defaultReplicas", "must be 1, 3 or 5 (or 0: the cluster's, up to 3)");
  const level = str("log.level", g("log", "level"));
  if (!LOG_LEVELS.includes(level)) fail("log.level", `must be one of ${LOG_LEVELS.join(", ")}`);
  const nats: NatsConfig = {
    servers: urls("nats.servers", g("nats", "servers")),
    ...omitUndefined({ user: opt("nats", "user"), pass: opt("nats", "pass"), creds: opt("nats", "creds"), sysUser: opt("nats", "sysUser"), sysPass: opt("nats", "sysPass") }),
  };
  return deepFreeze({
    nats,
    runtime: { heartbeatMs, presenceTtlMs, drainTimeoutMs: int("runtime.drainTimeoutMs", g("runtime", "drainTimeoutMs"), 0, 600_000), heapGrowingPercent: int("runtime.heapGrowingPercent", g("runtime", "heapGrowingPercent"), 0, 1000) },
    storage: {
      defaultReplicas: replicas,
      markerTtlMs: int("storage.markerTtlMs", g("storage", "markerTtlMs"), 0, 365 * 86_400_000),
      orphanGraceMs: int("storage.orphanGraceMs", g("storage", "orphanGraceMs"), 1000, 365 * 86_400_000),
      readGraceMs: int("storage.readGraceMs", g("storage", "readGraceMs"), 0, 7 * 86_400_000),
      pressureReadGraceMs: int("storage.pressureReadGraceMs", g("storage", "pressureReadGraceMs"), 0, 7 * 86_400_000),
      sweepIntervalMs: int("storage.sweepIntervalMs", g("storage", "sweepIntervalMs"), 0, 7 * 86_400_000),
      multipartMaxAgeMs: int("storage.multipartMaxAgeMs", g("storage", "multipartMaxAgeMs"), 1000, 365 * 86_400_000),
      restateAfterMs: int("storage.restateAfterMs", g("storage", "restateAfterMs"), 0, 7 * 86_400_000),
      firstSweepMs: int("storage.firstSweepMs", g("storage", "firstSweepMs"), 0, 7 * 86_400_000),
    },
    dev: {
      dataDir: str("dev.dataDir", g("dev", "dataDir")),
      natsPort: int("dev.natsPort", g("dev", "natsPort"), 0, 65535),
      servers: int("dev.servers", g("dev", "servers"), 1, 7),
    },
    gateway: {
      host: str("gateway.host", g("gateway", "host")),
      port: int("gateway.port", g("gateway", "port"), 0, 65535),
      region: str("gateway.region", g("gateway", "region")),
      domains: list("gateway.domains", g("gateway", "domains")),
      maxPutBytes: int("gateway.maxPutBytes", g("gateway", "maxPutBytes"), 1, 5 * 1024 ** 4),
      ...keyPair(opt("gateway", "accessKey"), opt("gateway", "secretKey")),
    },
    health: {
      intervalMs: int("health.intervalMs", g("health", "intervalMs"), 100, 600_000),
      debounceMs: int("health.debounceMs", g("health", "debounceMs"), 0, 3_600_000),
      repairGraceMs: int("health.repairGraceMs", g("health", "repairGraceMs"), 0, 7 * 86_400_000),
      storageWarnRatio: ratio("health.storageWarnRatio", g("health", "storageWarnRatio")),
      ...omitUndefined({ webhookUrl: webhook(opt("health", "webhookUrl")) }),
    },
    console: {
      host: str("console.host", g("console", "host")),
      port: int("console.port", g("console", "port"), 0, 65535),
      sessionTtlMs: int("console.sessionTtlMs", g("console", "sessionTtlMs"), 1000, 30 * 86_400_000),
      idleTtlMs: int("console.idleTtlMs", g("console", "idleTtlMs"), 1000, 30 * 86_400_000),
      ...omitUndefined({ publicUrl: httpUrl("console.publicUrl", opt("console", "publicUrl")), tlsCert: opt("console", "tlsCert"), tlsKey: opt("console", "tlsKey") }),
    },
    metrics: {
      host: str("metrics.host", g("metrics", "host")),
      ...omitUndefined({ port: optInt("metrics.port", pick(layers, "metrics", "port", undefined), 0, 65535) }),
    },
    log: { level },
  });
}

/** The SHOAL_* environment variables, as a config layer. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigInput {
  const e = (k: string) => (env[k] === undefined || env[k] === "" ? undefined : env[k]);
  return {
    nats: { servers: e("SHOAL_NATS_URL"), user: e("SHOAL_NATS_USER"), pass: e("SHOAL_NATS_PASS"), creds: e("SHOAL_NATS_CREDS"), sysUser: e("SHOAL_NATS_SYS_USER"), sysPass: e("SHOAL_NATS_SYS_PASS") },
    runtime: { heartbeatMs: e("SHOAL_HEARTBEAT_MS"), drainTimeoutMs: e("SHOAL_DRAIN_TIMEOUT_MS"), heapGrowingPercent: e("SHOAL_HEAP_GROWING_PERCENT") },
    storage: {
      defaultReplicas: e("SHOAL_DEFAULT_REPLICAS"),
      markerTtlMs: e("SHOAL_MARKER_TTL_MS"),
      orphanGraceMs: e("SHOAL_ORPHAN_GRACE_MS"),
      readGraceMs: e("SHOAL_READ_GRACE_MS"),
      pressureReadGraceMs: e("SHOAL_PRESSURE_READ_GRACE_MS"),
      sweepIntervalMs: e("SHOAL_SWEEP_INTERVAL_MS"),
      multipartMaxAgeMs: e("SHOAL_MULTIPART_MAX_AGE_MS"),
      restateAfterMs: e("SHOAL_RESTATE_AFTER_MS"),
      firstSweepMs: e("SHOAL_FIRST_SWEEP_MS"),
    },
    dev: { dataDir: e("SHOAL_DATA"), natsPort: e("SHOAL_NATS_PORT") },
    health: { intervalMs: e("SHOAL_HEALTH_INTERVAL_MS"), debounceMs: e("SHOAL_HEALTH_DEBOUNCE_MS"), repairGraceMs: e("SHOAL_REPAIR_GRACE_MS"), webhookUrl: e("SHOAL_ALERT_WEBHOOK") },
    gateway: { port: e("SHOAL_S3_PORT"), host: e("SHOAL_S3_HOST"), region: e("SHOAL_REGION"), accessKey: e("SHOAL_ACCESS_KEY"), secretKey: e("SHOAL_SECRET_KEY"), domains: e("SHOAL_S3_DOMAINS") },
    metrics: { host: e("SHOAL_METRICS_HOST"), port: e("SHOAL_METRICS_PORT") },
    console: { port: e("SHOAL_CONSOLE_PORT"), host: e("SHOAL_CONSOLE_HOST"), publicUrl: e("SHOAL_PUBLIC_URL") },
    log: { level: e("SHOAL_LOG_LEVEL") },
  };
}

/** A JSON config file, as a config layer. */
export function configFromFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ShoalError("InvalidConfig", `cannot read config file ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("top level must be an object");
    return v as ConfigInput;
  } catch (e) {
    throw new ShoalError("InvalidConfig", `config file ${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

/** defaults < file < env < flags. */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; flags?: ConfigInput } = {}): ShoalConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env["SHOAL_CONFIG"];
  return buildConfig(file ? configFromFile(file) : {}, configFromEnv(env), opts.flags ?? {});
}

function omitUndefined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
