/** Multipart uploads with S3 semantics (`shoal.v1.mpu.<op>.<bucket>`, served by the storage actor). */
import { nuid } from "@nats-io/nats-core";
import { isShoalError } from "../errors/index.ts";
import { mpuSubject } from "../subjects/index.ts";
import { H } from "../subjects/headers.ts";
import * as v1 from "../subjects/v1.ts";
import { inMemory, replyJson, type Wire } from "./wire.ts";
import { INLINE_PUT_MAX, type Body, type ObjectMeta, type PartInfo, type PartList, type PutOptions, type UploadList, type UploadListOptions } from "./types.ts";

const decodePart = (o: unknown) => v1.checkReply<PartInfo>(o, "part", v1.REPLY.part);

export function createMultipart(w: Wire, bucket: string, key: string, opts: { contentType?: string; metadata?: Record<string, string> } = {}): Promise<{ uploadId: string }> {
  return w.mpuCall("create", bucket, () => v1.encodeMpuCreate(key, opts), false, (o) => v1.checkReply<{ uploadId: string }>(o, "multipart create", v1.REPLY.uploadCreated));
}

/** Uploads part `partNumber` (1–10000; every part but the last ≥ 5 MiB). Re-uploading a number replaces the part. */
export async function uploadPart(w: Wire, bucket: string, key: string, uploadId: string, partNumber: number, body: Body, opts: Pick<PutOptions, "contentMd5" | "sha256" | "windowBytes" | "signal"> = {}): Promise<PartInfo> {
  const subject = mpuSubject("part", bucket);
  const headers = v1.partHeaders(key, uploadId, partNumber, opts);
  const small = inMemory(body);
  if (small && small.byteLength <= INLINE_PUT_MAX) {
    return w.idempotent(async () => decodePart(replyJson(await w.request(subject, small, { headers, timeoutMs: w.timeoutMs + 5000 }))));
  }
  return w.sendLarge(bucket, subject, headers, body, opts, decodePart);
}

/** Assembles the listed parts into the object; its ETag is S3's `<md5 of md5s>-<N>`. */
export async function completeMultipart(w: Wire, bucket: string, key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<ObjectMeta> {
  const subject = mpuSubject("complete", bucket);
  const body = v1.encodeMpuComplete(key, uploadId, parts);
  // the copy inside the cluster takes time proportional to the size
  return v1.decodeObjectInfoReply(replyJson(await w.request(subject, body, { timeoutMs: 600_000 })));
}

/**
 * Aborts the upload. Retried like an idempotent call: an abort's end state is
 * the same however often it is asked. So when an attempt's answer never came
 * (it timed out: the abort may have landed) and a later attempt finds no such
 * upload, the upload is aborted and the call answers so. A NoSuchUpload on the
 * first attempt, or for an upload that was completed, is the caller's error.
 */
export function abortMultipart(w: Wire, bucket: string, key: string, uploadId: string): Promise<{ aborted: boolean }> {
  const subject = mpuSubject("abort", bucket);
  const payload = v1.encodeMpuRef(key, uploadId);
  const headers = { [H.requestId]: nuid.next() };
  let unanswered = false;
  return w.idempotent(async () => {
    try {
      return { aborted: v1.checkReply<{ aborted: boolean }>(replyJson(await w.request(subject, payload, { headers })), "multipart abort", v1.REPLY.aborted).aborted };
    } catch (e) {
      if (unanswered && isShoalError(e, "NoSuchUpload") && e.detail?.["completed"] !== true) return { aborted: true };
      if (isShoalError(e, "Timeout")) unanswered = true;
      throw e;
    }
  });
}

export function listParts(w: Wire, bucket: string, key: string, uploadId: string, opts: { partNumberMarker?: number; maxParts?: number } = {}): Promise<PartList> {
  return w.mpuCall("parts", bucket, () => v1.encodeMpuParts(key, uploadId, opts), true, (o) => v1.checkReply<PartList>(o, "list parts", v1.REPLY.parts));
}

export function listMultipartUploads(w: Wire, bucket: string, opts: UploadListOptions = {}): Promise<UploadList> {
  return w.mpuCall("list", bucket, () => v1.encodeMpuList(opts), true, (o) => v1.checkReply<UploadList>(o, "list uploads", v1.REPLY.uploads));
}
