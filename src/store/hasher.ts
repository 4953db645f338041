/**
 * MD5 + SHA-256 + CRC-32 of a stream of chunks, computed off the event loop.
 *
 * A writer hashes every byte it publishes (the MD5 is the S3 ETag, the
 * SHA-256 the ADR-20 digest, the CRC-32 what Shoal's own whole-object reads
 * check: src/store/reader.ts). The CRC-32 rides with the SHA-256 (same
 * worker, 5–7 ms per 64 MiB with SIMD: src/runtime/crc32.ts), so it adds no
 * pass of its own over the bytes. Done inline, that is ~140 ms of the event
 * loop per 64 MiB on this machine (MD5 ~640 MiB/s, SHA-256 ~1.6 GiB/s), time
 * in which no publish goes out and no ack is read. One worker thread per
 * algorithm hashes instead (two per process), while the event loop keeps the chunks flowing;
 * each chunk is copied to it (~0.1 ms per MiB). Small bodies (under
 * `OFFLOAD_MIN`) are hashed inline: posting them costs more than it saves.
 */
import * as nodeCrypto from "node:crypto";
import { createHash, type Hash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { SIMD_CRC_MODULE, crc32, crcHex } from "../runtime/crc32.ts";

/** Bodies smaller than this are hashed inline. */
export const OFFLOAD_MIN = 4 * 1024 * 1024;

export interface Digests {
  md5hex: string;
  /** Base64url SHA-256, padded (the ADR-20 digest form). */
  sha256: string;
  /** CRC-32 of the body, 8 lower-case hex digits. */
  crc32: string;
}

export interface Hasher {
  /**
   * Adds the next bytes. `transfer`: the caller gives the chunk's whole
   * ArrayBuffer away (it is detached after the call), saving a copy.
   */
  update(chunk: Uint8Array, transfer?: boolean): void;
  digest(): Promise<Digests>;
  /** Forget the session (on failure); digest() must not be called after. */
  discard(): void;
  /** Resolves once at most `maxBytes` given to update() are still waiting to be hashed (memory bound). */
  caughtUp(maxBytes: number): Promise<void>;
}

/**
 * One digest of bytes already in memory: `crypto.hash` (Node ≥ 20.12), which
 * skips the Hash object — 15 against 22 µs for the MD5 and SHA-256 of 4 KiB
 * here, on every small put — else createHash.
 */
export function digestOf(algorithm: "md5" | "sha256", data: Uint8Array, encoding: "hex" | "base64url"): string {
  const oneShot = (nodeCrypto as { hash?: (a: string, d: Uint8Array, e: string) => string }).hash;
  return typeof oneShot === "function" ? oneShot(algorithm, data, encoding) : createHash(algorithm).update(data).digest(encoding);
}

function padded(b64url: string): string {
  return b64url + "=".repeat((4 - (b64url.length % 4)) % 4);
}

class InlineHasher implements Hasher {
  private readonly md5: Hash | undefined;
  private readonly sha: Hash = createHash("sha256");
  private crc = 0;
  constructor(md5: boolean) {
    this.md5 = md5 ? createHash("md5") : undefined;
  }
  update(chunk: Uint8Array): void {
    this.md5?.update(chunk);
    this.sha.update(chunk);
    this.crc = crc32(chunk, this.crc);
  }
  digest(): Promise<Digests> {
    return Promise.resolve({ md5hex: this.md5?.digest("hex") ?? "", sha256: padded(this.sha.digest("base64url")), crc32: crcHex(this.crc) });
  }
  discard(): void {}
  caughtUp(): Promise<void> {
    return Promise.resolve();
  }
}

const SPARE_BUFFERS = 8;

// The worker is plain CommonJS evaluated from a string: no loader or build step.
// A "sha256" session also keeps the CRC-32, with the implementation
// src/runtime/crc32.ts picked (its module's path comes as workerData): SIMD,
// else zlib's native one, else a table.
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const zlib = require("node:zlib");
let crc32 = workerData && workerData.simdCrc ? require(workerData.simdCrc).crc32 : zlib.crc32;
if (typeof crc32 !== "function") {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) { let c = i; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[i] = c >>> 0; }
  crc32 = (b, prev) => { let c = ~prev >>> 0; for (let i = 0; i < b.length; i++) c = t[(c ^ b[i]) & 0xff] ^ (c >>> 8); return ~c >>> 0; };
}
const sessions = new Map();
const open = (a) => ({ h: createHash(a), c: a === "sha256" ? 0 : undefined });
parentPort.on("message", (m) => {
  if (m.t === "u") {
    let s = sessions.get(m.id);
    if (!s) sessions.set(m.id, (s = open(m.a)));
    s.h.update(m.b);
    if (s.c !== undefined) s.c = crc32(m.b, s.c) >>> 0;
    // the buffer goes back: hashed bytes become garbage where GC runs often
    // (here nothing else allocates, so dead buffers would pile up)
    parentPort.postMessage({ id: m.id, n: m.b.byteLength, b: m.b }, [m.b.buffer]);
  } else if (m.t === "d") {
    const s = sessions.get(m.id) ?? open(m.a);
    sessions.delete(m.id);
    parentPort.postMessage({ id: m.id, d: s.h.digest(m.a === "md5" ? "hex" : "base64url"), c: s.c });
  } else if (m.t === "x") {
    sessions.delete(m.id);
  }
});
`;

class HashWorker {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (d: Digest) => void; reject: (e: unknown) => void }>();
  /** Buffers back from the worker, reused for the next copies. */
  private spare: Uint8Array[] = [];
  /** Per session: bytes posted and not yet hashed, and who waits for that to shrink. */
  private readonly backlog = new Map<number, { bytes: number; wake?: () => void }>();
  private nextId = 1;
  private sessions = 0;
  private failure: unknown;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { simdCrc: SIMD_CRC_MODULE } });
    this.worker.unref();
    this.worker.on("message", (m: { id: number; n?: number; b?: Uint8Array; d: string; c?: number }) => {
      if (m.b && this.spare.length < SPARE_BUFFERS) this.spare.push(m.b);
      if (m.n !== undefined) {
        const b = this.backlog.get(m.id);
        if (b) {
          b.bytes -= m.n;
          b.wake?.();
        }
        return;
      }
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.resolve({ d: m.d, ...(m.c !== undefined ? { crc: m.c } : {}) });
    });
    this.worker.on("error", (e) => this.fail(e));
    this.worker.on("exit", (code) => this.fail(new Error(`the hashing worker exited (${code})`)));
  }

  private fail(e: unknown): void {
    this.failure ??= e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    for (const b of this.backlog.values()) b.wake?.();
    if (shared.md5 === this) shared.md5 = undefined;
    if (shared.sha256 === this) shared.sha256 = undefined;
  }

  get broken(): boolean {
    return this.failure !== undefined;
  }

  private copyOf(chunk: Uint8Array): Uint8Array {
    const i = this.spare.findIndex((b) => b.byteLength === chunk.byteLength);
    const b = i >= 0 ? this.spare.splice(i, 1)[0]! : new Uint8Array(chunk.byteLength);
    b.set(chunk);
    return b;
  }

  /** A session hashing with `algo` only ("md5" → hex, "sha256" → base64url unpadded, and the CRC-32). */
  open(algo: "md5" | "sha256"): OneHash {
    const id = this.nextId++;
    this.sessions++;
    this.worker.ref();
    let open = true;
    const backlog: { bytes: number; wake?: () => void } = { bytes: 0 };
    this.backlog.set(id, backlog);
    const close = () => {
      if (!open) return;
      open = false;
      this.backlog.delete(id);
      if (--this.sessions === 0) this.worker.unref();
    };
    return {
      update: (chunk, transfer) => {
        // Given away: moved, not copied. Else a copy of just these bytes,
        // transferred: posting the view itself would clone the whole
        // ArrayBuffer behind it (a subarray of a large Buffer). Sharing chunks
        // in a SharedArrayBuffer instead was measured slower.
        const b = transfer && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer) ? chunk : this.copyOf(chunk);
        backlog.bytes += b.byteLength;
        this.worker.postMessage({ t: "u", id, b, a: algo }, [b.buffer as ArrayBuffer]);
      },
      caughtUp: async (maxBytes) => {
        while (backlog.bytes > maxBytes && !this.failure && open) await new Promise<void>((r) => (backlog.wake = r));
        backlog.wake = undefined;
        if (this.failure) throw this.failure;
      },
      digest: () =>
        new Promise<Digest>((resolve, reject) => {
          if (this.failure) return reject(this.failure);
          this.waiting.set(id, {
            resolve: (d) => {
              close();
              resolve(d);
            },
            reject: (e) => {
              close();
              reject(e);
            },
          });
          this.worker.postMessage({ t: "d", id, a: algo });
        }),
      discard: () => {
        if (!open) return;
        this.worker.postMessage({ t: "x", id });
        close();
      },
    };
  }
}

/** One session's result: the digest, and the CRC-32 for a "sha256" session. */
interface Digest {
  d: string;
  crc?: number;
}

/** One algorithm's session on a worker. */
interface OneHash {
  update(chunk: Uint8Array, transfer?: boolean): void;
  digest(): Promise<Digest>;
  discard(): void;
  caughtUp(maxBytes: number): Promise<void>;
}

/**
 * One worker per algorithm, so MD5 (~700 MB/s here) and SHA-256 (~1.4 GB/s
 * with SHA-NI) run side by side instead of one after the other: measured on
 * this 2-core machine, one worker doing both hashed ~260 MB/s of a 16 MiB
 * direct PUT and was the longest tail of the commit (it ends a window behind
 * the publishes). Each chunk is copied to the SHA-256 worker (~0.1 ms per
 * MiB) and given (or copied) to the MD5 one.
 */
const shared: { md5?: HashWorker; sha256?: HashWorker } = {};
function workerFor(algo: "md5" | "sha256"): HashWorker {
  let w = shared[algo];
  if (!w || w.broken) w = shared[algo] = new HashWorker();
  return w;
}
function workerHasher(md5: boolean): Hasher {
  const sha = workerFor("sha256").open("sha256");
  const m5 = md5 ? workerFor("md5").open("md5") : undefined;
  return {
    update: (chunk, transfer) => {
      sha.update(chunk, m5 ? false : transfer);
      m5?.update(chunk, transfer);
    },
    caughtUp: async (maxBytes) => {
      await sha.caughtUp(maxBytes);
      await m5?.caughtUp(maxBytes);
    },
    digest: async () => {
      const [s, m] = await Promise.all([sha.digest(), m5 ? m5.digest() : Promise.resolve({ d: "" })]);
      return { md5hex: m.d, sha256: padded(s.d), crc32: crcHex(s.crc ?? 0) };
    },
    discard: () => {
      sha.discard();
      m5?.discard();
    },
  };
}

/**
 * Inline for small bodies, on the worker for large ones: the first
 * `OFFLOAD_MIN` bytes are held (by reference; the writer holds them for its
 * publish window anyway) and either hashed inline at the end, or replayed
 * into the worker as soon as the body proves large.
 */
export class AdaptiveHasher implements Hasher {
  private held: Array<{ chunk: Uint8Array; transfer: boolean }> = [];
  private heldBytes = 0;
  private inner: Hasher | undefined;

  /** `md5: false`: the SHA-256 only (md5hex is ""), for a writer whose ETag is not the body's MD5 (multipart). */
  constructor(private readonly md5 = true) {}

  update(chunk: Uint8Array, transfer = false): void {
    if (this.inner) return this.inner.update(chunk, transfer);
    this.held.push({ chunk, transfer });
    this.heldBytes += chunk.byteLength;
    if (this.heldBytes >= OFFLOAD_MIN) {
      this.inner = workerHasher(this.md5);
      for (const h of this.held) this.inner.update(h.chunk, h.transfer);
      this.held = [];
    }
  }

  digest(): Promise<Digests> {
    if (!this.inner) {
      const h = new InlineHasher(this.md5);
      for (const c of this.held) h.update(c.chunk);
      this.held = [];
      return h.digest();
    }
    return this.inner.digest();
  }

  discard(): void {
    this.held = [];
    this.inner?.discard();
  }

  caughtUp(maxBytes: number): Promise<void> {
    return this.inner ? this.inner.caughtUp(maxBytes) : Promise.resolve();
  }
}
