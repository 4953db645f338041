/**
 * `shoal status [--json]`: the health-monitor's view of the cluster
 * (request `shoal.v1.health`) as tables — servers, streams under-replicated,
 * actors, open alerts. Exit code 0 when healthy, 1 when not (or when no
 * health-monitor answers).
 */
import { connectNats } from "../connect.ts";
import { ShoalError, errorFromWire, toShoalError } from "../errors/index.ts";
import { healthSubject } from "../subjects/index.ts";
import { parseFlags } from "./args.ts";
import { MIN_VERSION, formatVersion, parseVersion, versionAtLeast } from "../engine/version.ts";
import { RebalanceApi, type RebalanceStatus } from "../client/rebalance.ts";
import { rebalanceLine } from "./rebalance-command.ts";
import { commonFlagsLayer, configFor, EXIT } from "./main.ts";

interface View {
  healthy: boolean;
  time: string;
  servers: Array<{ name: string; up: boolean; version?: string; storage?: number; maxStorage?: number }>;
  metaLeader?: string | null;
  streams: Array<{ name: string; replicas: number; leader: string | null; healthy: boolean; current?: number; peers: Array<{ name: string; current: boolean; offline: boolean; lag: number }> }>;
  underReplicated: string[];
  actors: Array<{ kind: string; live: number }>;
  alerts: Array<{ id: string; code: string; severity: string; subject: string; message: string; since: string }>;
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

/** The engine as `shoal status` reports it: the version of the server it is connected to, and the minimum. */
export interface EngineLine {
  version: string;
  minimum: string;
}

const versionCell = (ver: string | undefined) => {
  if (!ver) return "-";
  const p = parseVersion(ver);
  return p && !versionAtLeast(p, MIN_VERSION) ? `${ver} (TOO OLD)` : ver;
};

export function renderStatus(v: View, engine?: EngineLine): string {
  const mib = (n?: number) => (n === undefined ? "-" : `${(n / 1024 / 1024).toFixed(0)} MiB`);
  const out = [
    `Shoal is ${v.healthy ? "healthy" : "NOT healthy"} (as of ${v.time}${v.metaLeader !== undefined ? `; JetStream meta leader: ${v.metaLeader ?? "none"}` : ""})`,
    ...(engine ? [`Engine: nats-server ${engine.version} (Shoal needs >= ${engine.minimum})`] : []),
    "",
    table(["SERVER", "STATE", "VERSION", "STORAGE", "LIMIT"], v.servers.map((s) => [s.name, s.up ? "up" : "DOWN", versionCell(s.version), mib(s.storage), s.maxStorage ? mib(s.maxStorage) : "-"])),
    "",
    v.underReplicated.length
      ? table(["STREAM UNDER-REPLICATED", "CURRENT", "LEADER", "BEHIND OR OFFLINE"], v.streams.filter((s) => !s.healthy).map((s) => {
          const down = (name: string) => v.servers.some((x) => x.name === name && !x.up);
          const bad = s.peers.filter((p) => p.offline || !p.current || down(p.name)).map((p) => `${p.name}${p.offline || down(p.name) ? " (offline)" : ` (lag ${p.lag})`}`);
          return [s.name, `${s.current ?? "?"}/${s.replicas}`, s.leader ?? "none", bad.join(", ") || "-"];
        }))
      : `Streams: ${v.streams.length}, all fully replicated`,
    "",
    table(["ACTOR KIND", "LIVE"], v.actors.map((a) => [a.kind, String(a.live)])),
    "",
    v.alerts.length ? table(["ALERT", "SEVERITY", "SUBJECT", "SINCE", "MESSAGE"], v.alerts.map((a) => [a.code, a.severity, a.subject, a.since, a.message])) : "No open alerts",
  ];
  return out.join("\n");
}

export async function runStatus(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const { values } = parseFlags(args, {});
  const cfg = configFor(values, commonFlagsLayer(values));
  const nc = await connectNats(cfg.nats, { name: "shoal-status" });
  try {
    let m;
    try {
      m = await nc.request(healthSubject(), "", { timeout: 5000 });
    } catch (e) {
      const err = toShoalError(e);
      throw new ShoalError(err.code === "ServiceUnavailable" || err.code === "Timeout" ? "ServiceUnavailable" : err.code, `no health-monitor answered ${healthSubject()} (is one running?)`, { cause: e });
    }
    const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.string());
    if (err) throw err;
    const v = m.json<View>();
    const engine: EngineLine = { version: nc.info?.version ?? "unknown", minimum: formatVersion(MIN_VERSION) };
    // an ongoing rebalance, when a rebalancer answers (it is optional)
    const rebalance: RebalanceStatus | undefined = await new RebalanceApi(nc, 2000).status().catch(() => undefined);
    stdout.write(values.json ? `${JSON.stringify({ ...v, engine, ...(rebalance ? { rebalance } : {}) })}\n` : `${renderStatus(v, engine)}\n${rebalance ? `\n${rebalanceLine(rebalance)}\n` : ""}`);
    return v.healthy ? EXIT.ok : EXIT.failure;
  } finally {
    await nc.close();
  }
}
