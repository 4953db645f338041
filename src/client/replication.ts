/**
 * Replication rules (KV shoal_replication, applied by the replicator):
 * add, list, remove, lag, and an anti-entropy scrub run now.
 */
import { nuid } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { controlSubject, metaSubjectAll, objectStoreName, objectStoreStream } from "../subjects/index.ts";
import { listRules, openReplication, replDurable, ruleKey, statusKey, validateRule, type ReplicationRule, type ReplicationStatus, type ReplicationTarget, type ScrubReport } from "../store/replication.ts";
import { bucketInfo } from "./buckets.ts";
import type { Wire } from "./wire.ts";

export type ReplicationRow = ReplicationRule & { behind: number; secondsBehind: number; status: ReplicationStatus | null };

const open = async (w: Wire) => openReplication(jetstream(w.nc), await jetstreamManager(w.nc));

/** Adds a rule: every change to `source` is applied to `target` (this cluster, or `target.servers`). */
export async function addReplication(w: Wire, source: string, target: ReplicationTarget): Promise<ReplicationRule> {
  validateRule({ source, target });
  await bucketInfo(w, source); // NoSuchBucket
  if (!target.servers?.length) await bucketInfo(w, target.bucket);
  const kv = await open(w);
  const rule: ReplicationRule = { v: 1, id: nuid.next().slice(-10).toLowerCase(), source, target, created: new Date().toISOString() };
  await kv.create(ruleKey(rule.id), JSON.stringify(rule));
  return rule;
}

export async function listReplications(w: Wire): Promise<ReplicationRule[]> {
  return listRules(await open(w));
}

/** Removes a rule, its progress and its consumer. */
export async function removeReplication(w: Wire, id: string): Promise<{ removed: boolean }> {
  const kv = await open(w);
  const e = await kv.get(ruleKey(id));
  if (!e || e.operation !== "PUT") return { removed: false };
  const rule = e.json<ReplicationRule>();
  await kv.delete(ruleKey(id));
  await kv.delete(statusKey(id)).catch(() => undefined);
  const jsm = await jetstreamManager(w.nc);
  await jsm.consumers.delete(objectStoreStream(rule.source), replDurable(id)).catch(() => undefined);
  return { removed: true };
}

/** Each rule with its lag: changes not yet applied, and how old the oldest of them is. */
export async function replicationStatus(w: Wire): Promise<ReplicationRow[]> {
  const kv = await open(w);
  const jsm = await jetstreamManager(w.nc);
  const out: ReplicationRow[] = [];
  for (const rule of await listRules(kv)) {
    const stream = objectStoreStream(rule.source);
    let behind = 0;
    let secondsBehind = 0;
    try {
      const ci = await jsm.consumers.info(stream, replDurable(rule.id));
      behind = ci.num_pending + ci.num_ack_pending;
      if (behind > 0) {
        const next = await jsm.direct.getMessage(stream, { seq: ci.ack_floor.stream_seq + 1, next_by_subj: metaSubjectAll(objectStoreName(rule.source)) }).catch(() => null);
        if (next) secondsBehind = Math.max(0, (Date.now() - next.time.getTime()) / 1000);
      }
    } catch {
      // not started yet: everything is behind
      const si = await jsm.streams.info(stream).catch(() => null);
      behind = si?.state.messages ?? 0;
    }
    const st = await kv.get(statusKey(rule.id));
    out.push({ ...rule, behind, secondsBehind, status: st && st.operation === "PUT" ? st.json<ReplicationStatus>() : null });
  }
  return out;
}

/** Runs anti-entropy for a rule now (on a replicator) and returns its report. */
export async function scrubReplication(w: Wire, id: string): Promise<ScrubReport & { id: string }> {
  return (await w.request(controlSubject("replicator", "scrub"), JSON.stringify({ v: 1, id }), { timeoutMs: 600_000 })).json();
}
