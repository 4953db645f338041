import { pino, type Logger, type DestinationStream, type LoggerOptions } from "pino";

export type { Logger };

/** Paths never written to a log line. */
export const REDACT = [
  "secretKey",
  "*.secretKey",
  "password",
  "*.password",
  "token",
  "*.token",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
];

/**
 * The root logger. Each actor takes `log.child({ actor, id })`, each request a
 * further child with its request id. Pass `destination` to capture lines in a
 * test.
 */
export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const options: LoggerOptions = {
    name: opts.name ?? "shoal",
    level: opts.level ?? process.env["SHOAL_LOG_LEVEL"] ?? "info",
    redact: { paths: REDACT, censor: "[redacted]" },
    base: { pid: process.pid },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
