/**
 * `shoal dev` command: parse flags, start the engine (src/cli/dev.ts), start
 * every actor, print the endpoints, wait for Ctrl-C, stop cleanly.
 */
import { createLogger } from "../log.ts";
import { startActors, installSignalHandlers } from "../runtime/index.ts";
import { parseFlags } from "./args.ts";
import { startDevEngine } from "./dev.ts";
import { commonFlagsLayer, configFor, EXIT, type CliDeps } from "./main.ts";

export async function runDev(args: string[], deps: CliDeps, stdout: NodeJS.WritableStream): Promise<number> {
  const { values } = parseFlags(args, {
    data: { type: "string" },
    "nats-port": { type: "string" },
    servers: { type: "string" },
    "s3-port": { type: "string" },
  });
  const config = configFor(values, {
    ...commonFlagsLayer(values),
    dev: { dataDir: values.data, natsPort: values["nats-port"], servers: values.servers },
    gateway: { port: values["s3-port"] },
  });
  const log = createLogger({ level: config.log.level });
  const say = (line: string) => stdout.write(`${line}\n`);
  const engine = await startDevEngine(config.dev, (l) => process.stderr.write(`${l}\n`));
  const c = engine.credentials;
  const nats = { servers: engine.urls, user: c.appUser, pass: c.appPassword, sysUser: c.sysUser, sysPass: c.sysPassword };
  let running: { stop(): Promise<void> } | undefined;
  try {
    running = await startActors(Object.values(deps.actors), { nats, runtime: config.runtime, storage: config.storage, logger: log });
  } catch (e) {
    await engine.stop();
    throw e;
  }
  const kinds = Object.keys(deps.actors);
  const url = engine.urls.join(",");
  say(`Shoal dev is up (data in ${engine.dataDir})`);
  say(`NATS: ${url}`);
  say(`Monitoring: ${engine.monitorUrls.join(",")}`);
  say(`Credentials: NATS user ${c.appUser} / ${c.appPassword} (also the server's no-auth user); system account ${c.sysUser} / ${c.sysPassword}; kept in ${engine.dataDir}/credentials.json`);
  say(`Actors: ${kinds.length ? kinds.join(", ") : "none"}`);
  say(`Try:`);
  say(`  $ npx shoal mb notes --nats ${url}`);
  say(`  $ echo 'hello, shoal' | npx shoal put - notes/hello.txt --nats ${url}`);
  say(`  $ nats --server ${engine.urls[0]} req shoal.v1.obj.get.notes '{"key":"hello.txt"}'`);
  say(`Press Ctrl-C to stop.`);
  await new Promise<void>((resolve) =>
    installSignalHandlers(async () => {
      say("shoal dev: stopping…");
      try {
        await running?.stop();
      } finally {
        await engine.stop();
      }
      resolve();
    }, config.runtime.drainTimeoutMs),
  );
  say("shoal dev: stopped");
  return EXIT.ok;
}
