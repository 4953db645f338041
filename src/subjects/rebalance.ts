/**
 * The rebalancer's replies on `shoal.ctl.rebalancer.<command>`: their wire
 * format, shared by the actor that sends them (actors/rebalancer) and the
 * SDK that reads them (src/client/rebalance.ts). docs/rebalancer.md.
 */

/** A server as the rebalancer sees it. */
export type ServerState =
  /** answering; a target for replicas */
  | "up"
  /** not answering, still within its grace period: neither a source nor a target */
  | "suspect"
  /** gone past its grace period, or removed by the operator: its replicas are replaced */
  | "down"
  /** drained by the operator: its replicas and leaderships move off, nothing moves on */
  | "drained";

/** What the operator said about a server: drained (undrain reverses it) or removed (for good; undrain reverses it too). */
export type ServerMark = "drained" | "removed";

export type MoveReason = "repair" | "drain" | "balance" | "leader";

/** One move of a plan: a replica of `stream` from `from` to `to`, or its leadership. */
export interface PlannedMove {
  kind: "replica" | "leader";
  stream: string;
  from: string;
  to: string;
  bytes: number;
  reason: MoveReason;
}

export type MoveState = "planned" | "running" | "done" | "failed";

export interface TrackedMove<M extends PlannedMove = PlannedMove> {
  move: M;
  state: MoveState;
  started?: number;
  ended?: number;
  error?: string;
  /** Where JetStream put the new replica (it chooses; the plan predicts). `-` when it placed none. */
  landed?: string;
}

/** A row of `shoal server ls`. */
export interface ServerRow {
  name: string;
  state: ServerState;
  mark?: ServerMark;
  bytes: number;
  replicas: number;
  leaders: number;
  /** No Shoal replica and no leadership on it. */
  safeToStop: boolean;
}

/** `status`: progress of the current rebalance (what `shoal rebalance status` shows). */
export interface RebalanceStatus {
  v: 1;
  /** idle: nothing to do; moving: moves running or waiting their turn; blocked: moves wanted but none possible now. */
  state: "idle" | "moving" | "blocked";
  by: string;
  time: string;
  /** Since when the current rebalance runs (ISO), if one does. */
  since?: string;
  planned: number;
  running: number;
  done: number;
  failed: number;
  bytesLeft: number;
  bytesDone: number;
  /** Seconds left at the observed (or configured) rate; null when unknown. */
  etaSeconds: number | null;
  moves: TrackedMove[];
  servers: ServerRow[];
  /** Why nothing moves, when it is blocked (e.g. a server in doubt). */
  note?: string;
}

/** `plan`: a dry run, the moves a rebalance would make now. */
export interface RebalancePlan {
  v: 1;
  moves: PlannedMove[];
  bytes: number;
  servers: ServerRow[];
}

/** `run`: a rebalance was asked for. */
export interface RebalanceRunReply {
  v: 1;
  accepted: boolean;
  moves: number;
  bytes: number;
}

/** What drain, undrain and remove answer: the command is recorded; the server table when JetStream answered. */
export interface ServerCommandResult {
  server: string;
  command: "drain" | "undrain" | "remove";
  mark: ServerMark | null;
  servers?: ServerRow[];
}
