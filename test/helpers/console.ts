/**
 * A console stack for tests: a nats-server, a storage actor (and optionally a
 * replicator), an S3 gateway and the console on free loopback ports, with a
 * fixed key pair and a captured log; all torn down after the test.
 */
import type { ExecutionContext } from "ava";
import { buildConfig, type ConsoleConfig } from "../../src/config.ts";
import { startConsole, type Console } from "../../src/console/index.ts";
import { startS3, S3_CREDS } from "./gateway.ts";
import { captureLogger, runActor } from "./actors.ts";
import type { LoginThrottle } from "../../src/console/session.ts";

export { S3_CREDS };

export async function startConsoleStack(t: ExecutionContext, o: { replicator?: boolean; console?: Partial<ConsoleConfig>; now?: () => number; throttle?: LoginThrottle } = {}) {
  const s3 = await startS3(t);
  if (o.replicator) {
    const { replicator } = await import("../../actors/replicator/index.ts");
    await runActor(t, s3.url, replicator);
  }
  const log = captureLogger();
  const config = buildConfig({ console: { port: 0, host: "127.0.0.1", ...o.console } }).console;
  const web: Console = await startConsole({
    config,
    client: s3.client,
    logger: log.logger,
    credentials: new Map([[S3_CREDS.accessKey, S3_CREDS.secretKey]]),
    region: S3_CREDS.region,
    s3Url: s3.endpoint,
    ...(o.now ? { now: o.now } : {}),
    ...(o.throttle ? { throttle: o.throttle } : {}),
  });
  t.teardown(() => web.close());
  return { ...s3, web, consoleUrl: web.url, log };
}
