/**
 * Decoding of v1 JSON payloads received over NATS. Payloads are decoded and
 * validated when received, never trusted: anything that does not match gets
 * MalformedPayload (or UnsupportedVersion) and nothing is touched.
 */
import { ShoalError } from "../errors/index.ts";

export const PAYLOAD_VERSION = 1;
/** Largest JSON request Shoal parses (object bodies are not JSON). */
export const MAX_JSON_BYTES = 64 * 1024;

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Parses a JSON object payload; an empty payload is `{}` (so `nats req subj ''` works). */
export function parseJsonObject(data: Uint8Array | string): Record<string, unknown> {
  const size = typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
  if (size > MAX_JSON_BYTES) throw new ShoalError("MalformedPayload", `JSON payload of ${size} bytes exceeds ${MAX_JSON_BYTES}`);
  const text = typeof data === "string" ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("utf8");
  if (text.trim() === "") return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ShoalError("MalformedPayload", `payload is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ShoalError("MalformedPayload", "payload must be a JSON object");
  const version = (v as Record<string, unknown>)["v"];
  if (version !== undefined && version !== PAYLOAD_VERSION) {
    throw new ShoalError("UnsupportedVersion", `payload version ${JSON.stringify(version)} is not supported; this service speaks v${PAYLOAD_VERSION}`);
  }
  return v as Record<string, unknown>;
}

/** Field readers that throw MalformedPayload naming the field. */
export const field = {
  string(o: Record<string, unknown>, name: string): string {
    const v = o[name];
    if (typeof v !== "string") throw new ShoalError("MalformedPayload", `field "${name}" must be a string`);
    return v;
  },
  optString(o: Record<string, unknown>, name: string): string | undefined {
    return o[name] === undefined || o[name] === null ? undefined : field.string(o, name);
  },
  optInt(o: Record<string, unknown>, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw new ShoalError("MalformedPayload", `field "${name}" must be an integer in [${min}, ${max}]`);
    }
    return v;
  },
  optBool(o: Record<string, unknown>, name: string): boolean | undefined {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") throw new ShoalError("MalformedPayload", `field "${name}" must be a boolean`);
    return v;
  },
  optStringArray(o: Record<string, unknown>, name: string, maxItems: number): string[] | undefined {
    const v = o[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.length > maxItems || !v.every((x) => typeof x === "string")) {
      throw new ShoalError("MalformedPayload", `field "${name}" must be an array of at most ${maxItems} strings`);
    }
    return v as string[];
  },
};

/** Refuses fields the schema does not know (catches typos such as "prefx"). */
export function onlyFields(o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (k !== "v" && !allowed.includes(k)) throw new ShoalError("MalformedPayload", `unknown field ${JSON.stringify(k.slice(0, 64))}; expected ${allowed.join(", ")}`);
  }
}
