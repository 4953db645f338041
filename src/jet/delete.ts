/**
 * Removing messages: deletes by sequence (a message already gone is not an
 * error) and purges of one subject. On nats-server ≥ 2.9.12 (Shoal needs
 * 2.14) neither makes a consumer skip messages it has not delivered yet.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { classify, jsCode, toJetError, JS_CODES } from "./errors.ts";
import { getSeq } from "./direct.ts";

/** Deletes each sequence (marker-free `no_erase` delete), `concurrency` requests at a time; returns how many existed. */
export async function deleteSeqs(jsm: JetStreamManager, stream: string, seqs: readonly number[], o: { concurrency?: number } = {}): Promise<number> {
  const queue = [...seqs];
  let deleted = 0;
  const worker = async () => {
    for (let seq = queue.shift(); seq !== undefined; seq = queue.shift()) {
      try {
        if (await jsm.streams.deleteMessage(stream, seq, false)) deleted++;
      } catch (e) {
        if (classify(e) === "notFound") continue;
        // 10057 ("message delete failed") is what 2.15 answers for a sequence
        // past the end, and also for a store failure: gone is fine, present is not.
        if (jsCode(e) === JS_CODES.MsgDeleteFailed && (await getSeq(jsm, stream, seq)) === null) continue;
        throw toJetError(e, `delete ${stream}#${seq}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 16, queue.length)) }, worker));
  return deleted;
}

/** Removes every message on `subject` (one request); returns how many were removed. */
export async function purgeSubject(jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  try {
    return (await jsm.streams.purge(stream, { filter: subject })).purged;
  } catch (e) {
    throw toJetError(e, `purge ${subject}`);
  }
}
