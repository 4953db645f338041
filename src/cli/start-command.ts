/**
 * `shoal start --actors LIST --nats URL`: the production path. Runs the chosen
 * actors (one connection each) against an existing NATS cluster until
 * SIGINT/SIGTERM, then drains them within the configured deadline.
 */
import { createLogger } from "../log.ts";
import { startActors, installSignalHandlers } from "../runtime/index.ts";
import { parseFlags } from "./args.ts";
import { selectActors } from "./actors.ts";
import { commonFlagsLayer, configFor, EXIT, type CliDeps } from "./main.ts";

export async function runStart(args: string[], deps: CliDeps): Promise<number> {
  const { values } = parseFlags(args, { actors: { type: "string" } });
  const config = configFor(values, commonFlagsLayer(values));
  const defs = selectActors(deps.actors, values.actors);
  const log = createLogger({ level: config.log.level });
  const running = await startActors(defs, { nats: config.nats, runtime: config.runtime, storage: config.storage, logger: log });
  log.info({ actors: defs.map((d) => d.kind), servers: config.nats.servers }, "actors started");
  await new Promise<void>((resolve) => installSignalHandlers(async () => {
    await running.stop();
    resolve();
  }, config.runtime.drainTimeoutMs));
  return EXIT.ok;
}
