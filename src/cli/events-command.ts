/**
 * `shoal events [bucket] [--prefix p] [--from time|seq|all] [--durable NAME] [--json]`:
 * tails object-change events (stream SHOAL_EVENTS) until Ctrl-C, one line per
 * event: `<time> <eventName> <bucket>/<key> <size> <etag>`, or the JSON body.
 */
import { ShoalClient, type EventsOptions } from "../client/index.ts";
import { ShoalError } from "../errors/index.ts";
import { assertBucketName } from "../store/names.ts";
import { parseFlags } from "./args.ts";
import { commonFlagsLayer, configFor, EXIT } from "./main.ts";

export function parseFrom(v: string | undefined): EventsOptions["from"] {
  if (v === undefined || v === "new") return "new";
  if (v === "all") return "all";
  if (/^\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ShoalError("InvalidArgument", `--from takes a time (ISO 8601), a sequence, "all" or "new"; got ${JSON.stringify(v)}`);
  return new Date(t);
}

export async function runEvents(args: string[], stdout: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parseFlags(args, { prefix: { type: "string" }, from: { type: "string" }, durable: { type: "string" }, count: { type: "string" } }, true);
  if (positionals.length > 1) throw new ShoalError("InvalidArgument", "expected at most one bucket");
  const bucket = positionals[0] === undefined ? undefined : assertBucketName(positionals[0]);
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(count > 0)) throw new ShoalError("InvalidArgument", "--count must be a positive number");
  const from = parseFrom(values.from);
  const cfg = configFor(values, commonFlagsLayer(values));
  const client = await ShoalClient.connect(cfg.nats);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let n = 0;
  try {
    for await (const e of client.events({ ...(bucket ? { bucket } : {}), ...(values.prefix ? { prefix: values.prefix } : {}), ...(from !== undefined ? { from } : {}), ...(values.durable ? { durable: values.durable } : {}), signal: ac.signal })) {
      stdout.write(values.json ? `${JSON.stringify(e)}\n` : `${e.eventTime} ${e.eventName} ${e.bucket}/${e.key} ${e.size} ${e.etag ?? "-"}\n`);
      if (++n >= count) break;
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await client.close();
  }
  return EXIT.ok;
}
