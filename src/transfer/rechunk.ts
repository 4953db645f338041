/** Bytes of a message kept free for NATS headers (max_payload covers headers and body). */
export const HEADER_ROOM = 1024;

/**
 * Buffers rechunk allocated itself (pieces joined into one chunk): nobody
 * else holds them, so a consumer done with one may transfer it to a worker
 * instead of copying it (src/store/hasher.ts).
 */
const owned = new WeakSet<ArrayBufferLike>();

/** Whether `chunk` is a whole buffer rechunk allocated (see `owned`). */
export function isOwnedChunk(chunk: Uint8Array): boolean {
  return owned.has(chunk.buffer) && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
}

function join(parts: Uint8Array[], size: number): Uint8Array {
  // a dedicated ArrayBuffer (never Buffer's shared pool), so it can be transferred
  const out = new Uint8Array(new ArrayBuffer(size));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  owned.add(out.buffer);
  return out;
}

/** Splits a byte stream into chunks of exactly `size` (the last may be shorter). */
export async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let parts: Uint8Array[] = [];
  let have = 0;
  for await (const piece of source) {
    if (piece.byteLength === 0) continue;
    let p = piece;
    while (have + p.byteLength >= size) {
      const need = size - have;
      parts.push(p.subarray(0, need));
      yield parts.length === 1 ? parts[0]! : join(parts, size);
      parts = [];
      have = 0;
      p = p.subarray(need);
    }
    if (p.byteLength > 0) {
      parts.push(p);
      have += p.byteLength;
    }
  }
  if (have > 0) yield parts.length === 1 ? parts[0]! : join(parts, have);
}

