/**
 * Helpers of the jet-* tests (src/jet against a real nats-server): stream
 * state readers. Waiting is test/helpers/wait.ts's eventually().
 */
import type { JetStreamManager } from "@nats-io/jetstream";

/** Message count per subject matching `filter`. */
export async function subjectCounts(jsm: JetStreamManager, stream: string, filter = ">"): Promise<Record<string, number>> {
  return (await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {};
}
