/**
 * The registry of actor kinds, by name. `shoal dev` starts all of them and
 * `shoal start --actors …` the chosen ones. Each kind lives in
 * actors/<kind>/ (index.ts: contract and wiring; logic.ts: pure decisions).
 */
import type { ActorRegistry } from "../src/cli/actors.ts";
import { storage } from "./storage/index.ts";
import { replicator } from "./replicator/index.ts";
import { healthMonitor } from "./health-monitor/index.ts";
import { rebalancer } from "./rebalancer/index.ts";

export const ACTORS: ActorRegistry = Object.freeze({ storage, replicator, rebalancer, "health-monitor": healthMonitor });
