/**
 * CRC-32 (ISO-HDLC, zlib's: polynomial 0xEDB88320 reflected) and CRC-32C
 * (Castagnoli), incrementally. Used for the S3 `x-amz-checksum-crc32/-crc32c`
 * checks (src/gateway/body.ts) and for the whole-object check a GET makes
 * (src/store/hasher.ts records it, src/store/reader.ts verifies it): every
 * byte a PUT or a whole-object GET moves passes through one of them.
 *
 * Implementations, fastest first (64 MiB on this machine, 2026-12-03):
 * - `@node-rs/crc32` (SIMD: PCLMULQDQ for CRC-32, SSE 4.2 for CRC-32C; a
 *   prebuilt binary per platform, no install script): 5–7.5 ms;
 * - zlib's native crc32 (Node 20.15 / 22.2 and later), CRC-32 only: 12–17 ms;
 * - a table in JavaScript (CRC-32C always, before this): ~200 ms.
 * The first one that loads is used; the three agree (test/unit/hasher.test.ts).
 */
import { createRequire } from "node:module";
import * as zlib from "node:zlib";

function table(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? poly ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
}
const CRC32_TABLE = table(0xedb88320);
const CRC32C_TABLE = table(0x82f63b78);

function tableCrc(t: Uint32Array, data: Uint8Array, prev: number): number {
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 by the table (what runs where zlib has no crc32; exported for the test that holds it to zlib's). */
export const crc32ByTable = (data: Uint8Array, prev = 0): number => tableCrc(CRC32_TABLE, data, prev);

/** CRC-32C by the table (exported for the test that holds the SIMD one to it). */
export const crc32cByTable = (data: Uint8Array, prev = 0): number => tableCrc(CRC32C_TABLE, data, prev);

type CrcFn = (data: Uint8Array, prev?: number) => number;
const require = createRequire(import.meta.url);

/** Where `@node-rs/crc32` loads from, when it does on this platform (the hash worker loads it too). */
export const SIMD_CRC_MODULE: string | undefined = (() => {
  try {
    const path = require.resolve("@node-rs/crc32");
    const m = require(path) as { crc32?: unknown; crc32c?: unknown };
    return typeof m.crc32 === "function" && typeof m.crc32c === "function" ? path : undefined;
  } catch {
    return undefined;
  }
})();
const simd = SIMD_CRC_MODULE ? (require(SIMD_CRC_MODULE) as { crc32: CrcFn; crc32c: CrcFn }) : undefined;
const zlibCrc = (zlib as unknown as { crc32?: CrcFn }).crc32;

/** Which implementation this process uses (logged by benches). */
export const crcImplementation: "simd" | "zlib" | "table" = simd ? "simd" : zlibCrc ? "zlib" : "table";

/** CRC-32 of `data`, continuing from `prev` (the CRC of the bytes before it; 0 to start). */
export const crc32: (data: Uint8Array, prev?: number) => number = simd
  ? (data, prev = 0) => simd.crc32(data, prev) >>> 0
  : zlibCrc
    ? (data, prev = 0) => zlibCrc(data, prev) >>> 0
    : crc32ByTable;

/** CRC-32C of `data`, continuing from `prev`. */
export const crc32c: (data: Uint8Array, prev?: number) => number = simd ? (data, prev = 0) => simd.crc32c(data, prev) >>> 0 : crc32cByTable;

/** The form Shoal stores: 8 lower-case hex digits. */
export function crcHex(c: number): string {
  return (c >>> 0).toString(16).padStart(8, "0");
}

/** An incremental digester with the `update` / `digest` shape of node:crypto's Hash (digest: 4 bytes, big-endian). */
export class Crc {
  private c = 0;
  constructor(private readonly fn: (data: Uint8Array, prev: number) => number = crc32) {}
  update(b: Uint8Array): this {
    this.c = this.fn(b, this.c);
    return this;
  }
  get value(): number {
    return this.c;
  }
  digest(): Buffer {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(this.c >>> 0);
    return out;
  }
}
