import { parseArgs, type ParseArgsConfig } from "node:util";
import { ShoalError } from "../errors/index.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every command takes. */
export const COMMON_OPTIONS = {
  nats: { type: "string" },
  config: { type: "string" },
  "log-level": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Options;

/**
 * Strict flag parsing (unknown flags are an error, not silently ignored).
 * Returns the values and positionals; throws InvalidArgument with the reason.
 */
export function parseFlags<O extends Options>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals, strict: true });
  } catch (e) {
    throw new ShoalError("InvalidArgument", (e as Error).message.replace(/\. To specify a positional.*$/s, "."), { cause: e });
  }
}
