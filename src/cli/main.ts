/**
 * `shoal` — the command line. Commands are small functions over the SDK and
 * the runtime; bin/shoal.js hands in the actor registry (src/ never imports
 * actors/).
 */
import { readFileSync } from "node:fs";
import { ShoalError, toShoalError } from "../errors/index.ts";
import { loadConfig, type ConfigInput, type ShoalConfig } from "../config.ts";
import { createLogger } from "../log.ts";
import { ensureNatsServer } from "../engine/binary.ts";
import { MIN_VERSION, formatVersion } from "../engine/version.ts";
import { parseFlags } from "./args.ts";
import { runDev } from "./dev-command.ts";
import { runStart } from "./start-command.ts";
import { runObjectCommand } from "./objects.ts";
import { runEvents } from "./events-command.ts";
import { runReplicate } from "./replicate-command.ts";
import { runStatus } from "./status-command.ts";
import { runRebalance, runServer } from "./rebalance-command.ts";
import type { ActorRegistry } from "./actors.ts";

export interface CliDeps {
  /** Every actor kind that exists, by name (actors/index.ts). */
  actors: ActorRegistry;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** Exit codes: scripts can tell a usage error from a failure. */
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 3 } as const;

const HELP = `shoal — a distributed S3-style object store on NATS JetStream

Usage:
  shoal dev [--data DIR] [--nats-port N] [--s3-port N] [--console-port N] [--servers N]
                                                         run everything locally (npm start)
  shoal start --actors LIST [--gateway] [--nats URL] [--metrics-port N] [--console-port N] [--public-url URL]
                                                         run actors (and an S3 gateway with its web console,
                                                         default port 9001) against a cluster;
                                                         /metrics, /healthz, /readyz on the gateway or port N
  shoal mb <bucket> [--replicas 1|3|5]                   make a bucket
  shoal rb <bucket> [--force]                            remove a bucket (--force: with its objects)
  shoal ls [<bucket>[/<prefix>]] [-r]                    list buckets, or objects (-r: no folders)
  shoal put <file|-> <bucket>/<key> [--content-type T] [--etag md5|sha256]
                                                         upload (- = stdin; --etag sha256: no MD5)
  shoal get <bucket>/<key> [file|-] [--range a-b]        download (- = stdout)
  shoal rm <bucket>/<key>...                             delete objects
  shoal cp <bucket>/<key> <bucket>/<key>                 server-side copy
  shoal stat <bucket>[/<key>]                            bucket or object details
  shoal events [<bucket>] [--prefix P] [--from T|SEQ|all] [--durable NAME] [--count N]
                                                         tail object-change events
  shoal replicate add <src> <dst> [--target-nats URL --target-user U --target-pass P]
  shoal replicate ls | rm <id> | status | scrub <id>      bucket replication rules
  shoal status [--json]                                  cluster health (exit 1 when unhealthy)
  shoal server ls | drain <name> [--wait] | undrain <name> | remove <name>
                                                         servers: state, bytes, replicas, leaders, safe to stop
  shoal rebalance plan | run | status                    replica moves: dry run, start now, progress
  shoal setup                                            find or install nats-server (>= 2.14.0)
  shoal version
  shoal help

Common flags: --nats URL[,URL…] (SHOAL_NATS_URL), --config FILE (SHOAL_CONFIG),
              --log-level LEVEL (SHOAL_LOG_LEVEL), --json
Actors: storage, replicator, rebalancer, health-monitor (LIST is comma-separated, or "all").
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Config layer from the common flags. */
export function commonFlagsLayer(values: { nats?: string | undefined; "log-level"?: string | undefined }): ConfigInput {
  return { nats: { servers: values.nats }, log: { level: values["log-level"] } };
}

export function configFor(values: { config?: string | undefined }, flags: ConfigInput): ShoalConfig {
  return loadConfig({ ...(values.config ? { file: values.config } : {}), flags });
}

export async function main(argv: string[], deps: CliDeps): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const [command = "help", ...rest] = argv;
  // `shoal <command> --help` (or -h) prints the help and starts nothing: every
  // command takes the flag (COMMON_OPTIONS), so none may act on it.
  const beforeDashDash = rest.indexOf("--") === -1 ? rest : rest.slice(0, rest.indexOf("--"));
  if (beforeDashDash.includes("--help") || beforeDashDash.includes("-h")) {
    stdout.write(HELP);
    return EXIT.ok;
  }
  try {
    switch (command) {
      case "dev":
        return await runDev(rest, deps, stdout);
      case "start":
        return await runStart(rest, deps);
      case "mb":
      case "rb":
      case "ls":
      case "put":
      case "get":
      case "rm":
      case "cp":
      case "stat":
        return await runObjectCommand(command, rest, stdout, stderr);
      case "events":
        return await runEvents(rest, stdout);
      case "replicate":
        return await runReplicate(rest, stdout);
      case "status":
        return await runStatus(rest, stdout);
      case "server":
        return await runServer(rest, stdout);
      case "rebalance":
        return await runRebalance(rest, stdout);
      case "setup": {
        const { values } = parseFlags(rest, {});
        const b = ensureNatsServer({ install: true, log: (l) => stderr.write(`${l}\n`) });
        stdout.write(values.json ? `${JSON.stringify({ ...b, minimum: formatVersion(MIN_VERSION) })}\n` : `nats-server ${b.version} at ${b.path} (${b.source === "installed" ? "installed now" : `found via ${b.source}`}; Shoal needs >= ${formatVersion(MIN_VERSION)})\n`);
        return EXIT.ok;
      }
      case "version":
      case "--version":
        stdout.write(`shoal ${version()}\n`);
        return EXIT.ok;
      case "help":
      case "--help":
      case "-h":
        stdout.write(HELP);
        return EXIT.ok;
      default:
        throw new ShoalError("InvalidArgument", `unknown command ${JSON.stringify(command)}; run \`shoal help\``);
    }
  } catch (e) {
    const err = toShoalError(e);
    if (err.code === "InternalError") createLogger({ name: "shoal-cli" }).error({ err: e }, "command failed");
    stderr.write(`shoal ${command}: ${err.code === "InternalError" ? err.message : e instanceof ShoalError ? e.message : err.message}\n`);
    if (err.code === "InvalidArgument" || err.code === "InvalidConfig") return EXIT.usage;
    if (err.code === "NoSuchBucket" || err.code === "NoSuchKey" || err.code === "NoSuchUpload" || err.code === "NoSuchServer") return EXIT.notFound;
    return EXIT.failure;
  }
}
