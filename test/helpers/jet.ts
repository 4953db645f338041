/**
 * Helpers of the jet-* tests (src/jet against a real nats-server): stream
 * state readers, and a client that loses an answer. Waiting is
 * test/helpers/wait.ts's eventually().
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { TimeoutError } from "@nats-io/nats-core";

/** Message count per subject matching `filter`. */
export async function subjectCounts(jsm: JetStreamManager, stream: string, filter = ">"): Promise<Record<string, number>> {
  return (await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {};
}

/**
 * A JetStream client whose first publish on a subject starting with
 * `prefix` lands but whose answer is lost (a TimeoutError instead): what a
 * writer sees when the ack of a stored message does not come back.
 */
export function firstAnswerLost(real: JetStreamClient, prefix: string): { js: JetStreamClient; dropped: () => boolean } {
  let dropped = false;
  const js = new Proxy(real, {
    get(target, prop) {
      if (prop === "publish") {
        return async (subject: string, data: Uint8Array | string, opts?: Parameters<JetStreamClient["publish"]>[2]) => {
          const ack = await target.publish(subject, data, opts);
          if (!dropped && subject.startsWith(prefix)) {
            dropped = true;
            throw new TimeoutError();
          }
          return ack;
        };
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { js, dropped: () => dropped };
}
