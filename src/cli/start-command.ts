/**
 * `shoal start --actors LIST [--gateway] --nats URL`: the production path.
 * Runs the chosen actors (one connection each) and, with --gateway, an S3
 * gateway against an existing NATS cluster until SIGINT/SIGTERM, then drains
 * them within the configured deadline. `--gateway` alone runs only a gateway.
 */
import { createLogger } from "../log.ts";
import { startActors, installSignalHandlers, drainProcess } from "../runtime/index.ts";
import { runGateway } from "../gateway/index.ts";
import { runConsole } from "../console/index.ts";
import { startOpsServer, type OpsServer } from "../metrics/index.ts";
import { instancesReady } from "../runtime/process.ts";
import { tuneServerGc } from "../runtime/gc.ts";
import { parseFlags } from "./args.ts";
import { selectActors } from "./actors.ts";
import { commonFlagsLayer, configFor, EXIT, type CliDeps } from "./main.ts";

export async function runStart(args: string[], deps: CliDeps): Promise<number> {
  const { values } = parseFlags(args, { actors: { type: "string" }, gateway: { type: "boolean" }, "s3-port": { type: "string" }, "metrics-port": { type: "string" }, "console-port": { type: "string" }, "public-url": { type: "string" } });
  const config = configFor(values, { ...commonFlagsLayer(values), gateway: { port: values["s3-port"] }, metrics: { port: values["metrics-port"] }, console: { port: values["console-port"], publicUrl: values["public-url"] } });
  const defs = values.gateway && !values.actors ? [] : selectActors(deps.actors, values.actors);
  const log = createLogger({ level: config.log.level });
  const gc = tuneServerGc(config.runtime.heapGrowingPercent);
  log.debug({ gc }, "V8 heap growth");
  const running = await startActors(defs, { nats: config.nats, runtime: config.runtime, storage: config.storage, health: config.health, logger: log });
  let gateway: Awaited<ReturnType<typeof runGateway>> | undefined;
  let ops: OpsServer | undefined;
  let web: Awaited<ReturnType<typeof runConsole>> | undefined;
  const actorsReady = () => instancesReady(running.instances);
  try {
    if (values.gateway) gateway = await runGateway({ config: config.gateway, nats: config.nats, logger: log, alsoReady: actorsReady });
    if (gateway) web = await runConsole({ config: config.console, nats: config.nats, logger: log, credentials: new Map([[gateway.accessKey, gateway.secretKey]]), region: config.gateway.region, s3Url: gateway.url });
    const ready = gateway ? gateway.ready : actorsReady;
    if (config.metrics.port !== undefined) ops = await startOpsServer({ host: config.metrics.host, port: config.metrics.port, ready });
  } catch (e) {
    await web?.close();
    await gateway?.close();
    await running.stop();
    throw e;
  }
  log.info({ actors: defs.map((d) => d.kind), servers: config.nats.servers, ...(gateway ? { s3: gateway.url } : {}), ...(web ? { console: web.url } : {}), ...(ops ? { metrics: `${ops.url}/metrics` } : {}) }, "started");
  if (gateway) process.stdout.write(`S3: ${gateway.url}\n`);
  if (web) process.stdout.write(`Console: ${web.url}\n`);
  if (ops) process.stdout.write(`Metrics: ${ops.url}/metrics\n`);
  await new Promise<void>((resolve) =>
    installSignalHandlers(async () => {
      const edges = gateway ? { close: async (graceMs?: number) => void (await Promise.all([gateway!.close(graceMs), web?.close(graceMs)])) } : undefined;
      await drainProcess(config.runtime.drainTimeoutMs, edges, running);
      await ops?.close();
      resolve();
    }, config.runtime.drainTimeoutMs),
  );
  return EXIT.ok;
}
