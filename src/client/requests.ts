/**
 * Answered requests through nats.js 3.4 without a stack trace each. A
 * guarded patch of the client's internals (`@nats-io/nats-core/internal`,
 * pinned at 3.4.0 in package.json), in the manner of src/client/payloads.ts:
 * when their shape is not the one this was written for, nothing is patched
 * and the client works as shipped. Installed once per process by
 * `installRequestPaths()` (src/client/index.ts does on import).
 *
 * Every request nats.js answers (each JetStream publish's ack, each API
 * call, each service request) ends in `RequestOne.cancel()`, which rejects
 * the request's already-settled promise with a new
 * `RequestError("cancelled")` — a rejection nobody sees, whose Error
 * captures a stack trace all the same: 3.3–4.1 µs each (microbenchmark,
 * 15 frames deep), 5–8 % of the storage actor's CPU per 4 KiB PUT or GET
 * (node --cpu-prof, docs/benchmarks.md). This runs `cancel()` without an
 * error of the caller's with `Error.stackTraceLimit` at 0 (0.36–0.54 µs):
 * the same error, the same message and the same rejection, without the
 * stack frames. `cancel(err)` with an error is unchanged. The limit is
 * restored before `cancel` returns; nothing else runs in between (cancel
 * is synchronous).
 */
import { RequestOne } from "@nats-io/nats-core/internal";

const MARK = Symbol.for("nats-core-3.4:stackless-cancel");
/** Whether the patch is installed (tests). */
export const requestPaths = { stacklessCancel: false };

/** Installs the patch once per process (harmless to call again); says whether it took. */
export function installRequestPaths(): { stacklessCancel: boolean } {
  requestPaths.stacklessCancel = stacklessCancel();
  return { stacklessCancel: requestPaths.stacklessCancel };
}

function stacklessCancel(): boolean {
  const proto = (RequestOne as unknown as { prototype: Record<string | symbol, unknown> }).prototype;
  if (proto[MARK]) return true;
  const cancel = proto["cancel"];
  // the 3.4 method takes one optional error
  if (typeof cancel !== "function" || cancel.length > 1) return false;
  proto["cancel"] = function (this: unknown, err?: Error): void {
    if (err !== undefined) return (cancel as (e?: Error) => void).call(this, err);
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      (cancel as () => void).call(this);
    } finally {
      Error.stackTraceLimit = limit;
    }
  };
  proto[MARK] = true;
  return true;
}
