/**
 * Body transport of the storage actor: how a request's body reaches a
 * writer — inline (the payload), a flow-controlled transfer on a subject of
 * the actor's own (`Shoal-Stream: 1`), or a direct upload the SDK publishes
 * itself (./direct.ts) with the actor verifying and committing.
 */
import { nuid, type Msg } from "@nats-io/nats-core";
import { respondError, type Request } from "../../src/runtime/index.ts";
import { toShoalError } from "../../src/errors/index.ts";
import { transferSubject } from "../../src/subjects/index.ts";
import type { StoreRef } from "../../src/store/types.ts";
import { openDirectUpload } from "./direct.ts";
import { assertStream } from "../../src/store/reader.ts";
import { storeRef } from "../../src/store/bucket.ts";
import type { ClaimedChunks } from "../../src/store/claim.ts";
import { StreamReceiver, DEFAULT_WINDOW } from "../../src/transfer/index.ts";
import { once, type StorageState } from "./state.ts";

export function bodyTransport(s: StorageState) {
  const { ctx, jet, idleMs } = s;
  /**
   * Runs `write` on a request's body — the payload itself (inline), or a
   * flow-controlled transfer (`Shoal-Stream: 1`): accepted on a subject of
   * our own, the result sent as the reply to the sender's end marker.
   */
  const withBody = async (req: Request, bucket: string, streamed: boolean, what: string, write: (body: AsyncIterable<Uint8Array>) => Promise<Record<string, unknown>>) => {
    if (!streamed) return write(once(req.data));
    await assertStream(ctx.jsm, storeRef(bucket).stream);
    const subject = transferSubject(bucket, nuid.next());
    const receiver = new StreamReceiver(ctx.nc, subject, { idleMs });
    req.respond({ v: 1, subject, window: DEFAULT_WINDOW });
    try {
      const out = await write(receiver);
      if (receiver.endMsg) receiver.endMsg.respond(JSON.stringify(out));
    } catch (e) {
      const err = toShoalError(e);
      if (receiver.endMsg) respondError(receiver.endMsg, err);
      else StreamReceiver.refuse(ctx.nc, receiver.lastReply, err);
      req.log.info({ code: err.code }, `streamed ${what} failed`);
      s.noteFailure(err.code);
    }
    return undefined;
  };

  /**
   * Offers a direct upload (direct.ts) for a request whose checks passed:
   * `commit` turns the writer's claim into the result, `reply` answers the
   * commit with it. A graceful stop waits for the session (ctx.hold).
   */
  const offerDirect = <T>(req: Request, bucket: string, store: StoreRef, commit: (claim: ClaimedChunks, id: string, chunkSize: number) => Promise<T>, reply: (m: Msg, result: T) => void, about: Record<string, unknown>) => {
    const release = ctx.hold();
    return openDirectUpload(ctx.nc, jet, bucket, store, { idleMs, signal: ctx.transfers }, commit, reply, (outcome, err) => {
      release();
      if (outcome !== "ok") req.log.info({ code: outcome, ...(err ? { why: err.message } : {}), ...about }, "direct upload failed");
      s.noteFailure(outcome);
    });
  };

  return { withBody, offerDirect };
}
export type BodyTransport = ReturnType<typeof bodyTransport>;
