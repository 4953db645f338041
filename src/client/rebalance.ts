/**
 * SDK calls to the rebalancer (`shoal.ctl.rebalancer.<command>`, served by
 * the rebalancer actors; docs/rebalancer.md). Used by `shoal server …`,
 * `shoal rebalance …` and `shoal status`, and reachable from the facade as
 * `client.rebalance`.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { ShoalError, errorFromWire, toShoalError } from "../errors/index.ts";
import { rebalancerSubject, type RebalancerCommand } from "../subjects/index.ts";
import type { RebalancePlan, RebalanceRunReply, RebalanceStatus, ServerCommandResult, ServerRow } from "../subjects/rebalance.ts";

export type { ServerState, ServerRow, PlannedMove, TrackedMove, RebalanceStatus, RebalancePlan, RebalanceRunReply, ServerCommandResult } from "../subjects/rebalance.ts";

/** Talks to the rebalancer over one connection. */
export class RebalanceApi {
  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs = 15_000,
  ) {}

  private async call<T>(cmd: RebalancerCommand, body: Record<string, unknown> = {}): Promise<T> {
    let m;
    try {
      m = await this.nc.request(rebalancerSubject(cmd), JSON.stringify(body), { timeout: this.timeoutMs });
    } catch (e) {
      const err = toShoalError(e);
      if (err.code === "ServiceUnavailable" || err.code === "Timeout") throw new ShoalError("ServiceUnavailable", `no rebalancer answered ${rebalancerSubject(cmd)} (is one running? shoal start --actors rebalancer)`, { cause: e });
      throw err;
    }
    const err = errorFromWire((n) => m.headers?.get(n) || undefined, m.string());
    if (err) throw err;
    return m.json<T>();
  }

  /** Progress of the current rebalance. */
  status(): Promise<RebalanceStatus> {
    return this.call("status");
  }

  /** A dry run: the moves a rebalance would make now. */
  plan(): Promise<RebalancePlan> {
    return this.call("plan");
  }

  /** Start a rebalance now (capacity and leader balance, also when automatic balancing is off). */
  run(): Promise<RebalanceRunReply> {
    return this.call("run");
  }

  /** Every server with its state, bytes, replicas, leaders and whether it is safe to stop. */
  async servers(): Promise<ServerRow[]> {
    return (await this.call<{ servers: ServerRow[] }>("servers")).servers;
  }

  /** Move every replica and leadership off a server; `servers()` then tells when it is safe to stop. */
  drain(server: string): Promise<ServerCommandResult> {
    return this.call("drain", { server });
  }

  /** Make a drained or removed server a target again. */
  undrain(server: string): Promise<ServerCommandResult> {
    return this.call("undrain", { server });
  }

  /** Give a server up at once (no grace period): its replicas are replaced on the others. */
  remove(server: string): Promise<ServerCommandResult> {
    return this.call("remove", { server });
  }
}
