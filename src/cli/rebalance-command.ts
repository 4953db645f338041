/**
 * `shoal server ls | drain <name> [--wait] | undrain <name> | remove <name>`
 * `shoal rebalance plan | run | status [--json]`
 * Requests to the rebalancer actors (docs/rebalancer.md); --json for scripts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ShoalClient, type RebalanceStatus, type ServerRow, type PlannedMove } from "../client/index.ts";
import { ShoalError } from "../errors/index.ts";
import { parseFlags } from "./args.ts";
import { commonFlagsLayer, configFor, EXIT } from "./main.ts";

const human = (n: number) => (n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n} B`);

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

export function renderServers(rows: readonly ServerRow[]): string {
  return table(
    ["SERVER", "STATE", "BYTES", "REPLICAS", "LEADERS", "SAFE TO STOP"],
    rows.map((s) => [s.name, s.mark === "removed" ? "removed" : s.state, human(s.bytes), String(s.replicas), String(s.leaders), s.safeToStop ? "yes" : "no"]),
  );
}

export function renderMoves(moves: readonly PlannedMove[]): string {
  if (moves.length === 0) return "Nothing to move: every Shoal stream is where the policy wants it.";
  return table(
    ["STREAM", "KIND", "FROM", "TO (predicted)", "BYTES", "WHY"],
    moves.map((m) => [m.stream, m.kind, m.from, m.to, m.kind === "leader" ? "-" : human(m.bytes), m.reason]),
  );
}

/** One line for `shoal status`. */
export function rebalanceLine(s: RebalanceStatus): string {
  if (s.state === "idle") return `Rebalance: idle${s.done || s.failed ? ` (last: ${s.done} moves done, ${s.failed} failed)` : ""}`;
  const eta = s.etaSeconds === null ? "unknown" : `${s.etaSeconds}s`;
  return `Rebalance: ${s.state}${s.since ? ` since ${s.since}` : ""}: ${s.planned} planned, ${s.running} running, ${s.done} done, ${s.failed} failed; ${human(s.bytesLeft)} left, ETA ${eta}${s.note ? ` (${s.note})` : ""}`;
}

export function renderStatus(s: RebalanceStatus): string {
  const recent = s.moves.filter((m) => m.state !== "planned");
  return [
    rebalanceLine(s),
    "",
    recent.length
      ? table(["STREAM", "KIND", "FROM", "TO", "STATE", "WHY"], recent.map((t) => [t.move.stream, t.move.kind, t.move.from, t.landed ?? t.move.to, t.state + (t.error ? ` (${t.error})` : ""), t.move.reason]))
      : "No moves yet.",
    "",
    renderServers(s.servers),
  ].join("\n");
}

export async function runServer(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseFlags(args, { wait: { type: "boolean" }, "timeout-s": { type: "string" } }, true);
  const [sub, name, ...extra] = positionals;
  const out = (text: string, data: unknown) => stdout.write(values.json ? `${JSON.stringify(data)}\n` : `${text}\n`);
  if (sub !== "ls" && (!name || extra.length)) throw new ShoalError("InvalidArgument", "usage: shoal server ls | drain <name> [--wait] | undrain <name> | remove <name>");
  const client = await ShoalClient.connect(configFor(values, commonFlagsLayer(values)).nats);
  try {
    switch (sub) {
      case "ls": {
        const rows = await client.rebalance.servers();
        out(renderServers(rows), rows);
        return EXIT.ok;
      }
      case "drain": {
        const r = await client.rebalance.drain(name!);
        const row = () => r.servers?.find((s) => s.name === name);
        if (values.wait) {
          const limit = Date.now() + Number(values["timeout-s"] ?? 3600) * 1000;
          let rows = r.servers ?? [];
          while (!rows.find((s) => s.name === name)?.safeToStop) {
            if (Date.now() > limit) throw new ShoalError("Timeout", `server ${name} still holds Shoal replicas or leaderships`);
            await sleep(1000);
            rows = await client.rebalance.servers();
          }
          out(`server ${name} drained: safe to stop`, { server: name, safeToStop: true, servers: rows });
          return EXIT.ok;
        }
        const s = row();
        out(`server ${name} draining: ${s?.safeToStop ? "safe to stop now" : `${s?.replicas ?? "?"} replicas and ${s?.leaders ?? "?"} leaderships to move off (shoal server ls shows when it is safe to stop)`}`, r);
        return EXIT.ok;
      }
      case "undrain":
      case "remove": {
        const r = sub === "undrain" ? await client.rebalance.undrain(name!) : await client.rebalance.remove(name!);
        out(sub === "undrain" ? `server ${name} takes replicas again` : `server ${name} removed: its replicas are being replaced on the other servers`, r);
        return EXIT.ok;
      }
      default:
        throw new ShoalError("InvalidArgument", `unknown server command ${JSON.stringify(sub ?? "")}; use ls, drain, undrain or remove`);
    }
  } finally {
    await client.close();
  }
}

export async function runRebalance(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseFlags(args, {}, true);
  const [sub, ...extra] = positionals;
  if (extra.length) throw new ShoalError("InvalidArgument", "usage: shoal rebalance plan | run | status [--json]");
  const out = (text: string, data: unknown) => stdout.write(values.json ? `${JSON.stringify(data)}\n` : `${text}\n`);
  const client = await ShoalClient.connect(configFor(values, commonFlagsLayer(values)).nats);
  try {
    switch (sub) {
      case "plan": {
        const p = await client.rebalance.plan();
        out(`${renderMoves(p.moves)}\n\n${p.moves.length} moves, ${human(p.bytes)} to copy (dry run: nothing moved)`, p);
        return EXIT.ok;
      }
      case "run": {
        const r = await client.rebalance.run();
        out(`rebalance started: ${r.moves} moves, ${human(r.bytes)} to copy (shoal rebalance status shows progress)`, r);
        return EXIT.ok;
      }
      case "status": {
        const s = await client.rebalance.status();
        out(renderStatus(s), s);
        return EXIT.ok;
      }
      default:
        throw new ShoalError("InvalidArgument", `unknown rebalance command ${JSON.stringify(sub ?? "")}; use plan, run or status`);
    }
  } finally {
    await client.close();
  }
}
