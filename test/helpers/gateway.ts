/**
 * A whole S3 stack for tests: a nats-server, storage actors and an S3 gateway
 * on a free loopback port, with a fixed key pair; all torn down after the test.
 */
import type { ExecutionContext } from "ava";
import { buildConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { startGateway, type Gateway } from "../../src/gateway/index.ts";
import { startShoal } from "./actors.ts";

export const S3_CREDS = Object.freeze({ accessKey: "SHOALTESTKEY", secretKey: "shoal-test-secret-key-0123456789", region: "us-east-1" });
/** A second key pair (another bucket owner), accepted when startS3 is given `otherUser: true`. */
export const S3_OTHER_CREDS = Object.freeze({ accessKey: "SHOALOTHERKEY", secretKey: "shoal-other-secret-key-987654321", region: "us-east-1" });

export async function startS3(t: ExecutionContext, o: { instances?: number; gateways?: number; now?: () => Date; otherUser?: boolean; completeHoldMs?: number; url?: string; storage?: NonNullable<Parameters<typeof startShoal>[1]>["storage"] } = {}) {
  const shoal = await startShoal(t, { instances: o.instances ?? 1, ...(o.url ? { url: o.url } : {}), ...(o.storage ? { storage: o.storage } : {}) });
  const config = buildConfig({ gateway: { port: 0, host: "127.0.0.1" } }).gateway;
  const gateways: Gateway[] = [];
  for (let i = 0; i < (o.gateways ?? 1); i++) {
    const gw = await startGateway({
      config,
      client: shoal.client,
      logger: createLogger({ level: process.env["SHOAL_TEST_LOG"] ?? "silent" }),
      credentials: new Map([[S3_CREDS.accessKey, S3_CREDS.secretKey], ...(o.otherUser ? ([[S3_OTHER_CREDS.accessKey, S3_OTHER_CREDS.secretKey]] as const) : [])]),
      ...(o.now ? { now: o.now } : {}),
      ...(o.completeHoldMs !== undefined ? { completeHoldMs: o.completeHoldMs } : {}),
    });
    t.teardown(() => gw.close());
    gateways.push(gw);
  }
  return { ...shoal, gateway: gateways[0]!, gateways, endpoint: gateways[0]!.url };
}
