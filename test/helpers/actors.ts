/**
 * Test-only actors and a fixture that runs an ActorInstance against a test
 * server, stopped in teardown.
 */
import { Writable } from "node:stream";
import type { ExecutionContext } from "ava";
import { ActorInstance, defineActor, rawReply, type ActorDefinition, type ActorWiring, type ActorContext } from "../../src/runtime/index.ts";
import { buildConfig, type HealthConfig, type NatsConfig, type RuntimeConfig, type StorageConfig } from "../../src/config.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { ShoalError } from "../../src/errors/index.ts";
import { controlSubject } from "../../src/subjects/index.ts";

/** A logger whose JSON lines are kept for assertions. */
export function captureLogger(level: "debug" | "warn" = "debug"): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  const logger = createLogger({ level, destination: sink });
  return {
    logger,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** The last lines an actor logged, on stderr, for a failed test's reader. */
function printKept(title: string, who: string, lines: Array<Record<string, unknown>>): void {
  if (lines.length === 0) return;
  const brief = (l: Record<string, unknown>) => {
    const err = l["err"] as { type?: string; message?: string; stack?: string } | undefined;
    const at = err?.stack?.split("\n").find((f) => f.includes("/src/") || f.includes("/actors/"))?.trim();
    return { ...l, time: undefined, pid: undefined, hostname: undefined, name: undefined, err: err ? `${err.type}: ${err.message}${at ? ` (${at})` : ""}` : undefined };
  };
  const shown = lines.slice(-40).map((l) => `  ${new Date(Number(l["time"])).toISOString()} ${JSON.stringify(brief(l))}`);
  console.error(`[${title}] ${who} logged ${lines.length} warning(s) or error(s)${lines.length > 40 ? ", the last 40" : ""}:\n${shown.join("\n")}`);
}

export const FAST_RUNTIME: RuntimeConfig = buildConfig({ runtime: { heartbeatMs: 100, presenceTtlMs: 600, drainTimeoutMs: 3000 } }).runtime;

export const ECHO_SUBJECT = "shoal.test.echo";
/** The test actor's `slow` handler publishes its payload here as it starts. */
export const SLOW_STARTED_SUBJECT = "shoal.test.started.slow";

/**
 * An actor whose endpoints misbehave on purpose: `echo` answers, `throw`
 * throws synchronously, `reject` rejects, `refuse` throws a typed client
 * error, `slow` waits for the ms in its payload (saying so on
 * SLOW_STARTED_SUBJECT first), `silent` returns nothing.
 */
export function makeTestActor(kind = "tester", extra: Partial<ActorWiring> = {}): ActorDefinition {
  return defineActor({
    kind,
    description: "test actor",
    contract: { serves: [`${ECHO_SUBJECT}.*`] },
    service: { name: `shoal-${kind}`, version: "0.0.1", queue: `shoal-${kind}` },
    start: (ctx: ActorContext) => ({
      endpoints: [
        { name: "echo", subject: `${ECHO_SUBJECT}.echo`, handler: (req) => ({ echo: new TextDecoder().decode(req.data), id: ctx.id }) },
        {
          name: "throw",
          subject: `${ECHO_SUBJECT}.throw`,
          handler: () => {
            throw new Error("secret internal detail: /var/lib/db password=hunter2");
          },
        },
        { name: "reject", subject: `${ECHO_SUBJECT}.reject`, handler: async () => Promise.reject(new TypeError("boom in a promise")) },
        {
          name: "refuse",
          subject: `${ECHO_SUBJECT}.refuse`,
          handler: () => {
            throw new ShoalError("NoSuchKey", undefined, { detail: { key: "k" } });
          },
        },
        {
          name: "slow",
          subject: `${ECHO_SUBJECT}.slow`,
          handler: async (req) => {
            const ms = Number(new TextDecoder().decode(req.data)) || 500;
            ctx.nc.publish(SLOW_STARTED_SUBJECT, req.data); // a test can wait for the handler to be running
            await new Promise((r) => setTimeout(r, ms));
            return { slept: ms };
          },
        },
        { name: "silent", subject: `${ECHO_SUBJECT}.silent`, handler: () => undefined },
        { name: "json", subject: `${ECHO_SUBJECT}.json`, handler: (req) => req.json() },
        // replies that cannot be encoded: a header value with CR/LF, a BigInt in JSON
        { name: "badheader", subject: `${ECHO_SUBJECT}.badheader`, handler: () => rawReply("x", { "Shoal-Meta-Evil": "a\r\nInjected: 1" }) },
        { name: "bigint", subject: `${ECHO_SUBJECT}.bigint`, handler: () => ({ n: 1n }) as unknown as Record<string, unknown> },
        // a thrown error whose message quotes CR/LF from the request
        { name: "echoerr", subject: `${ECHO_SUBJECT}.echoerr`, handler: (req) => Promise.reject(new ShoalError("InvalidArgument", `bad ${new TextDecoder().decode(req.data)}`)) },
      ],
      controls: [{ subject: controlSubject(kind, "ping"), handler: () => ({ pong: ctx.id }) }],
      ...extra,
    }),
  });
}

export async function runActor(
  t: ExecutionContext,
  url: string,
  def: ActorDefinition = makeTestActor(),
  opts: { logger?: Logger; runtime?: RuntimeConfig; id?: string; storage?: Partial<StorageConfig>; health?: Partial<HealthConfig>; nats?: Partial<NatsConfig> } = {},
): Promise<ActorInstance> {
  // Without a logger of the test's own, the actor's warnings and errors are
  // kept and printed when the test fails: CI shows only its output, and a
  // failure under load is otherwise a bare "Timeout" with no cause.
  const kept = opts.logger ? undefined : captureLogger("warn");
  const inst = new ActorInstance(def, {
    nats: buildConfig({ nats: { servers: url, ...opts.nats } }).nats,
    runtime: opts.runtime ?? FAST_RUNTIME,
    storage: buildConfig({ storage: opts.storage ?? {} }).storage,
    health: buildConfig({ health: opts.health ?? {} }).health,
    logger: opts.logger ?? kept!.logger,
    ...(opts.id ? { id: opts.id } : {}),
  });
  t.teardown(() => {
    if (kept && !t.passed) printKept(t.title, `${def.kind} ${inst.id}`, kept.lines());
    return inst.stop(1000);
  });
  await inst.start();
  return inst;
}

/** A server, `instances` storage actors and an SDK client, all torn down after the test. */
export async function startShoal(t: ExecutionContext, o: { instances?: number; url?: string; storage?: Partial<StorageConfig> } = {}) {
  const { startServer } = await import("./nats.ts");
  const { storage } = await import("../../actors/storage/index.ts");
  const { ShoalClient } = await import("../../src/client/index.ts");
  const srv = o.url ? undefined : await startServer(t);
  const url = o.url ?? srv!.url;
  const actors = [];
  for (let i = 0; i < (o.instances ?? 1); i++) actors.push(await runActor(t, url, storage, o.storage ? { storage: o.storage } : {}));
  const client = await ShoalClient.connect({ servers: url });
  t.teardown(() => client.close());
  return { srv, url, actors, client };
}
