/**
 * The nats-server version Shoal needs, and the one pure check used both where
 * a binary is found (`--version`) and where a connection opens (the server's
 * INFO). No I/O here.
 *
 * Why 2.14.0: it is the oldest release that has every server feature Shoal
 * is built around —
 * - per-message TTLs (2.11) and batched Direct Get (2.11);
 * - atomic batch publish, stream `allow_atomic` (2.12);
 * - fast-ingest batches with flow-control acks, stream `allow_batched` (2.14,
 *   `js.startFastIngest` in @nats-io/jetstream 3.4);
 * - `sync_interval: always` (2.10), offered in nats.conf;
 * and the fixes Shoal's guarantees rest on (clustered compare-and-set checked
 * again at apply, 2.9.21; purges and rollups no longer make consumers skip
 * messages, 2.9.12). Shoal is tested on TESTED_VERSION.
 */
import { ShoalError } from "../errors/index.ts";

export type Version = readonly [number, number, number];

export const MIN_VERSION: Version = [2, 14, 0];

/** What the test suite, compose.yaml and the installer's first choice run. */
export const TESTED_VERSION = "2.15.1";

export const formatVersion = (v: readonly number[]): string => v.join(".");

/** Parses `nats-server: v2.9.10`, `2.15.1`, `2.15.1-1` (a Debian version) or `v2.10.0-beta.1` into [major, minor, patch]. */
export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    const a = v[i] ?? 0;
    const b = min[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/** Compares two versions: negative, zero or positive. */
export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Throws NatsServerTooOld when a running server (its INFO version) is older
 * than MIN_VERSION, naming both versions. `where` says which server.
 */
export function assertServerVersion(version: string | undefined, where: string): void {
  const v = version === undefined ? undefined : parseVersion(version);
  if (v && versionAtLeast(v, MIN_VERSION)) return;
  throw new ShoalError(
    "NatsServerTooOld",
    `nats-server ${version ?? "(version not reported)"} at ${where} is older than ${formatVersion(MIN_VERSION)}, the oldest Shoal runs on; upgrade the server (Shoal is tested on ${TESTED_VERSION}; see docs/cluster.md)`,
  );
}
