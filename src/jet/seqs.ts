/**
 * The sequences of the messages on one subject, without their payloads: the
 * subject's count from stream info, then a headers-only ordered consumer
 * (one consumer, no body bytes moved — a Direct Get walk would move every
 * chunk of an object just to learn its sequences).
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { toJetError } from "./errors.ts";

export async function subjectCount(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  try {
    const si = await jsm.streams.info(stream, { subjects_filter: subject });
    return Object.values(si.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  } catch (e) {
    throw toJetError(e, `count ${subject}`);
  }
}

export async function subjectSeqs(js: JetStreamClient, jsm: JetStreamManager, stream: string, subject: string, o: { timeoutMs: number }): Promise<number[]> {
  const n = await subjectCount(jsm, stream, subject);
  if (n === 0) return [];
  const seqs: number[] = [];
  let c: Awaited<ReturnType<JetStreamClient["consumers"]["get"]>> | undefined;
  try {
    c = await js.consumers.get(stream, { filter_subjects: subject, headers_only: true });
    const deadline = Date.now() + o.timeoutMs;
    while (Date.now() < deadline) {
      const batch = await c.fetch({ max_messages: Math.min(1000, n), expires: Math.max(1000, Math.min(5000, deadline - Date.now())) });
      let last = -1;
      for await (const m of batch) {
        seqs.push(m.seq);
        last = m.info.pending;
      }
      if (last === 0) return seqs;
    }
    throw new Error(`sequences of ${subject}: ${seqs.length} of ${n} before the deadline`);
  } catch (e) {
    throw toJetError(e, `sequences of ${subject}`);
  } finally {
    await c?.delete().catch(() => undefined); // an ordered consumer would otherwise linger until its inactivity threshold
  }
}
