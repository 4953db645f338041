/**
 * `shoal dev` command: parse flags, start the engine (src/cli/dev.ts), start
 * every actor, print the endpoints, wait for Ctrl-C, stop cleanly.
 */
import { createLogger } from "../log.ts";
import { startActors, installSignalHandlers, drainProcess } from "../runtime/index.ts";
import { instancesReady } from "../runtime/process.ts";
import { tuneServerGc } from "../runtime/gc.ts";
import { parseFlags } from "./args.ts";
import { portIsFree, startDevEngine } from "./dev.ts";
import { runGateway } from "../gateway/index.ts";
import { runConsole } from "../console/index.ts";
import { commonFlagsLayer, configFor, EXIT, type CliDeps } from "./main.ts";
import { objectSubject } from "../subjects/index.ts";

export async function runDev(args: string[], deps: CliDeps, stdout: NodeJS.WritableStream): Promise<number> {
  const { values } = parseFlags(args, {
    data: { type: "string" },
    "nats-port": { type: "string" },
    servers: { type: "string" },
    "s3-port": { type: "string" },
    "console-port": { type: "string" },
    "public-url": { type: "string" },
  });
  const config = configFor(values, {
    ...commonFlagsLayer(values),
    dev: { dataDir: values.data, natsPort: values["nats-port"], servers: values.servers },
    gateway: { port: values["s3-port"] },
    console: { port: values["console-port"], publicUrl: values["public-url"] },
  });
  const log = createLogger({ level: config.log.level });
  const gc = tuneServerGc(config.runtime.heapGrowingPercent);
  log.debug({ gc }, "V8 heap growth");
  const say = (line: string) => stdout.write(`${line}\n`);
  const engine = await startDevEngine(config.dev, (l) => process.stderr.write(`${l}\n`));
  const c = engine.credentials;
  const nats = { servers: engine.urls, user: c.appUser, pass: c.appPassword, sysUser: c.sysUser, sysPass: c.sysPassword };
  let running: Awaited<ReturnType<typeof startActors>> | undefined;
  let gateway: Awaited<ReturnType<typeof runGateway>> | undefined;
  let web: Awaited<ReturnType<typeof runConsole>> | undefined;
  try {
    running = await startActors(Object.values(deps.actors), { nats, runtime: config.runtime, storage: config.storage, health: config.health, logger: log });
    const wantPort = config.gateway.port;
    const port = wantPort === 0 || !(await portIsFree(wantPort, config.gateway.host)) ? 0 : wantPort;
    if (wantPort !== 0 && port === 0) process.stderr.write(`shoal: port ${wantPort} is taken; the S3 gateway uses a free port instead\n`);
    const actors = running;
    gateway = await runGateway({ config: { ...config.gateway, port }, nats, logger: log, fallback: { accessKey: c.s3AccessKey, secretKey: c.s3SecretKey }, alsoReady: () => instancesReady(actors.instances) });
    const wantConsole = config.console.port;
    const consolePort = wantConsole === 0 || !(await portIsFree(wantConsole, config.console.host)) ? 0 : wantConsole;
    if (wantConsole !== 0 && consolePort === 0) process.stderr.write(`shoal: port ${wantConsole} is taken; the console uses a free port instead\n`);
    web = await runConsole({ config: { ...config.console, port: consolePort }, nats, logger: log, credentials: new Map([[gateway.accessKey, gateway.secretKey]]), region: config.gateway.region, s3Url: gateway.url });
  } catch (e) {
    await gateway?.close();
    await running?.stop();
    await engine.stop();
    throw e;
  }
  const edges = { close: async (graceMs?: number) => void (await Promise.all([gateway.close(graceMs), web.close(graceMs)])) };
  // Handlers first: a Ctrl-C that arrives while the banner prints must still drain.
  const stopped = new Promise<void>((resolve) =>
    installSignalHandlers(async () => {
      say("shoal dev: stopping…");
      try {
        await drainProcess(config.runtime.drainTimeoutMs, edges, running);
      } finally {
        await engine.stop();
      }
      resolve();
    }, config.runtime.drainTimeoutMs),
  );
  const kinds = Object.keys(deps.actors);
  const url = engine.urls.join(",");
  say(`Shoal dev is up (data in ${engine.dataDir})`);
  say(`NATS: ${url}`);
  say(`S3: ${gateway.url}`);
  say(`Console: ${web.url} (log in with the S3 access key and secret key below)`);
  say(`Metrics: ${gateway.url}/metrics (health: /healthz, /readyz)`);
  say(`Monitoring: ${engine.monitorUrls.join(",")}`);
  say(`Credentials: NATS user ${c.appUser} / ${c.appPassword} (also the server's no-auth user); system account ${c.sysUser} / ${c.sysPassword}; S3 access key ${gateway.accessKey} / secret key ${gateway.secretKey} (region ${config.gateway.region}); kept in ${engine.dataDir}/credentials.json`);
  say(`Actors: ${kinds.length ? kinds.join(", ") : "none"}`);
  say(`Try:`);
  say(`  $ npx shoal mb notes --nats ${url}`);
  say(`  $ echo 'hello, shoal' | npx shoal put - notes/hello.txt --nats ${url}`);
  say(`  $ nats --server ${engine.urls[0]} req ${objectSubject("get", "notes")} '{"key":"hello.txt"}'`);
  say(`  $ AWS_ACCESS_KEY_ID=${gateway.accessKey} AWS_SECRET_ACCESS_KEY=${gateway.secretKey} aws --endpoint-url ${gateway.url} s3 ls s3://notes`);
  say(`Press Ctrl-C to stop.`);
  await stopped;
  say("shoal dev: stopped");
  return EXIT.ok;
}
