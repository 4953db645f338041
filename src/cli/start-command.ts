/**
 * `shoal start --actors LIST [--gateway] --nats URL`: the production path.
 * Runs the chosen actors (one connection each) and, with --gateway, an S3
 * gateway against an existing NATS cluster until SIGINT/SIGTERM, then drains
 * them within the configured deadline. `--gateway` alone runs only a gateway.
 */
import { createLogger } from "../log.ts";
import { startActors, installSignalHandlers } from "../runtime/index.ts";
import { runGateway } from "../gateway/index.ts";
import { parseFlags } from "./args.ts";
import { selectActors } from "./actors.ts";
import { commonFlagsLayer, configFor, EXIT, type CliDeps } from "./main.ts";

export async function runStart(args: string[], deps: CliDeps): Promise<number> {
  const { values } = parseFlags(args, { actors: { type: "string" }, gateway: { type: "boolean" }, "s3-port": { type: "string" } });
  const config = configFor(values, { ...commonFlagsLayer(values), gateway: { port: values["s3-port"] } });
  const defs = values.gateway && !values.actors ? [] : selectActors(deps.actors, values.actors);
  const log = createLogger({ level: config.log.level });
  const running = await startActors(defs, { nats: config.nats, runtime: config.runtime, storage: config.storage, health: config.health, logger: log });
  let gateway: Awaited<ReturnType<typeof runGateway>> | undefined;
  try {
    if (values.gateway) gateway = await runGateway({ config: config.gateway, nats: config.nats, logger: log });
  } catch (e) {
    await running.stop();
    throw e;
  }
  log.info({ actors: defs.map((d) => d.kind), servers: config.nats.servers, ...(gateway ? { s3: gateway.url } : {}) }, "started");
  if (gateway) process.stdout.write(`S3: ${gateway.url}\n`);
  await new Promise<void>((resolve) =>
    installSignalHandlers(async () => {
      await gateway?.close();
      await running.stop();
      resolve();
    }, config.runtime.drainTimeoutMs),
  );
  return EXIT.ok;
}
