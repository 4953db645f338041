/**
 * Large incoming NATS payloads through nats.js 3.4 without its doubling
 * buffer: one allocation per large message. A guarded patch of the client's
 * internals (`@nats-io/nats-core/internal`, pinned at 3.4.0 in
 * package.json); when their shape is not the one this was written for,
 * nothing is patched and the client works as shipped. Installed once per
 * process by `installPayloadPaths()` (src/client/index.ts does on import).
 *
 * ## Receiving
 *
 * nats.js 3.4's protocol parser gathers a payload that spans several socket
 * reads (every chunk of a large object: 1 MiB arriving in 64 KiB reads) in a
 * `DenoBuffer` that starts at the first read's size and doubles as it fills:
 * for a 1 MiB chunk it is reallocated four times (192 K, 448 K, 960 K,
 * 1984 K), about 1.7 MiB copied and 3.5 MiB allocated per MiB delivered,
 * and the garbage of those buffers was the gateway's largest cost after the
 * socket writes (docs/datapath.md, "Where the CPU of a 64 MiB GET goes").
 *
 * The parser knows the payload's size (`ma.size`) as soon as the message's
 * first read ends. After each `parse()` that leaves a payload unfinished,
 * this gives the payload's buffer its final size once — the bytes read so
 * far (at most one socket read) copied over — so every later read is copied
 * in place and nothing is reallocated. The parser's states, its bounds
 * checks and what it delivers are unchanged: the message's bytes are the
 * same, in a buffer of exactly their size.
 *
 * This reaches into the client's internals (`@nats-io/nats-core/internal`,
 * pinned at 3.4.0 in package.json); when their shape is not the one this
 * was written for, nothing is patched and the client works as shipped
 * (test/integration/payloads.test.ts holds both the buffer size and the
 * bytes).
 *
 * ## Not patched: sending
 *
 * Writing large outgoing payloads corked, in place, instead of nats.js
 * packing the outbound list into one new frame, saved a publishing
 * process's CPU (0.084–0.105 → 0.050–0.069 s per 64 MiB) but no measurable
 * gateway CPU per PUT (docs/benchmarks.md), and it would change what
 * `publish()` promises every user of the SDK's process: that the caller may
 * reuse its buffer as soon as publish returns. Left out.
 */
import { Parser, State } from "@nats-io/nats-core/internal";

/** The parts of the 3.4 parser and its payload buffer this relies on. */
interface ParserShape {
  state: number;
  ma: { size: number };
  msgBuf?: { _buf: Uint8Array; _off: number; length: number; capacity: number; bytes(o: { copy: boolean }): Uint8Array };
}

const MARK = Symbol.for("nats-core-3.4:presized-payloads");
/** Whether the patch is installed (tests, benchmarks). */
export const payloadPaths = { receive: false };

/** Installs the patch once per process (harmless to call again); says whether it took. */
export function installPayloadPaths(): { receive: boolean } {
  payloadPaths.receive = presizePayloadBuffers();
  return { receive: payloadPaths.receive };
}

function presizePayloadBuffers(): boolean {
  const proto = (Parser as unknown as { prototype: Record<string | symbol, unknown> }).prototype;
  if (proto[MARK]) return true;
  const parse = proto["parse"];
  const payloadState = (State as unknown as Record<string, number>)["MSG_PAYLOAD"];
  if (typeof parse !== "function" || typeof payloadState !== "number") return false;
  proto["parse"] = function (this: ParserShape, buf: Uint8Array): void {
    (parse as (b: Uint8Array) => void).call(this, buf);
    const mb = this.msgBuf;
    if (this.state !== payloadState || !mb || !(this.ma?.size > 0) || mb.capacity >= this.ma.size) return;
    const have = mb.bytes({ copy: false });
    if (have.byteLength > this.ma.size) return;
    const full = new Uint8Array(this.ma.size);
    full.set(have);
    mb._buf = full.subarray(0, have.byteLength);
    mb._off = 0;
  };
  proto[MARK] = true;
  return true;
}
