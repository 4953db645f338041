/**
 * storage — serves the bucket and object API over NATS request/reply.
 *
 * Serves (NATS micro service `shoal-storage`, queue group `shoal-storage`):
 *   shoal.v1.bucket.{create,delete,list,info}
 *   shoal.v1.obj.{put,get,head,delete,list,deletemany,copy}.<bucket>
 *   shoal.v1.mpu.{create,part,complete,abort,parts,list}.<bucket>
 * Consumes: shoal.v1.xfer.<bucket>.<id> (bodies of streamed PUTs it accepted)
 * Publishes: chunks and metadata into the object stores OBJ_<bucket>
 *   ($O.<bucket>.C.<nuid>, $O.<bucket>.M.<key>), streamed GET bodies to the
 *   requester's inbox.
 * KV: shoal_buckets (the bucket registry, compare-and-set), shoal_multipart
 *   (multipart uploads and their parts).
 * Control: shoal.ctl.storage.sweep ({"v":1,"bucket"?}) sweeps now and replies
 *   with what it removed; a loop sweeps every bucket storage.firstSweepMs
 *   after the start, then every storage.sweepIntervalMs (src/store/sweep.ts:
 *   old delete markers, orphan chunks, copies of composed multipart objects);
 *   a write JetStream refuses for want of storage (InsufficientStorage) sets
 *   off a sweep of every bucket at once with the short
 *   storage.pressureReadGraceMs (storage pressure, ./sweep.ts).
 *
 * Layout: this file is the contract and the wiring. The handlers live by
 * concern — ./objects.ts, ./multipart.ts, ./buckets.ts, ./sweep.ts — on
 * the shared state of ./state.ts, with bodies moved by ./body.ts (inline,
 * streamed transfers, direct uploads: ./direct.ts). Decisions live in
 * ./logic.ts; the store format and data path in src/store.
 */
import { defineActor, type ActorContext, type Handler } from "../../src/runtime/index.ts";
import { toShoalError } from "../../src/errors/index.ts";
import { BUCKET_OPS, MPU_OPS, OBJECT_OPS, KV as KV_NAMES, STORAGE_QUEUE, STORAGE_SERVICE, bucketSubject, chunkSubjectAll, controlSubject, metaSubjectAll, objectSubjectWildcard, mpuSubjectWildcard, transferSubjectAll } from "../../src/subjects/index.ts";
import { openState } from "./state.ts";
import { bodyTransport } from "./body.ts";
import { objectHandlers } from "./objects.ts";
import { multipartHandlers } from "./multipart.ts";
import { bucketHandlers } from "./buckets.ts";
import { sweeper } from "./sweep.ts";

export const storage = defineActor({
  kind: "storage",
  description: "Shoal object and bucket API",
  contract: {
    serves: [...BUCKET_OPS.map((op) => bucketSubject(op)), ...OBJECT_OPS.map((op) => objectSubjectWildcard(op)), ...MPU_OPS.map((op) => mpuSubjectWildcard(op)), controlSubject("storage", "sweep")],
    consumes: [`${transferSubjectAll()} (bodies of streamed PUTs it accepted)`, `${metaSubjectAll("*")} (list index)`],
    publishes: [chunkSubjectAll("*"), metaSubjectAll("*"), "<requester inbox> (streamed GET bodies)"],
    kv: [KV_NAMES.buckets, KV_NAMES.bucketSettings],
  },
  service: { name: STORAGE_SERVICE, version: "1.0.0", queue: STORAGE_QUEUE },
  start: async (ctx: ActorContext) => {
    const s = await openState(ctx);
    const body = bodyTransport(s);
    const { createBucket, deleteBucket, listAll, bucketInfo } = bucketHandlers(s);
    const { sweepControl, sweepLoop } = sweeper(s);
    // a write refused for want of storage sets off the sweep's relief (./sweep.ts)
    const watched =
      (h: Handler): Handler =>
      async (req, c) => {
        try {
          return await h(req, c);
        } catch (e) {
          s.noteFailure(toShoalError(e).code);
          throw e;
        }
      };
    return {
      endpoints: [
        ...objectHandlers(s, body).map(([op, handler]) => ({ name: `obj-${op}`, subject: objectSubjectWildcard(op), handler: watched(handler) })),
        { name: "bucket-create", subject: bucketSubject("create"), handler: createBucket },
        { name: "bucket-delete", subject: bucketSubject("delete"), handler: deleteBucket },
        { name: "bucket-list", subject: bucketSubject("list"), handler: listAll },
        { name: "bucket-info", subject: bucketSubject("info"), handler: bucketInfo },
        ...multipartHandlers(s, body).map(([op, handler]) => ({ name: `mpu-${op}`, subject: mpuSubjectWildcard(op), handler: watched(handler) })),
      ],
      controls: [{ subject: controlSubject("storage", "sweep"), handler: sweepControl }],
      loops: [{ name: "sweep", run: sweepLoop }],
      close: async () => {
        await s.indexes.close();
        await s.settings.stopLive();
      },
    };
  },
});
