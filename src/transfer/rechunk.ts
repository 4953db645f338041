/** Bytes of a message kept free for NATS headers (max_payload covers headers and body). */
export const HEADER_ROOM = 1024;

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
      yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      parts = [];
      have = 0;
      p = p.subarray(need);
    }
    if (p.byteLength > 0) {
      parts.push(p);
      have += p.byteLength;
    }
  }
  if (have > 0) yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, have);
}

