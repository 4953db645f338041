/**
 * Object endpoints of the storage actor: put, get, head, delete, list,
 * deletemany, copy, versions (shoal.v1.obj.<op>.<bucket>).
 */
import { rawReply, type Request, type EndpointSpec } from "../../src/runtime/index.ts";
import { ShoalError, toShoalError } from "../../src/errors/index.ts";
import type { ObjectOp } from "../../src/subjects/index.ts";
import { H } from "../../src/subjects/headers.ts";
import { putObject, putBytes, deleteObject, deleteVersion, precheckPut } from "../../src/store/writer.ts";
import { allVersions, pageVersions, versionIdFor } from "../../src/store/versions.ts";
import { readObject, assertStream } from "../../src/store/reader.ts";
import { storeRef } from "../../src/store/bucket.ts";
import { commitClaim } from "../../src/store/claim.ts";
import { sendStream, DEFAULT_WINDOW } from "../../src/transfer/index.ts";
import { countBytes } from "../../src/metrics/index.ts";
import { INLINE_MAX, checkConditions, decodeCopy, decodeDeleteMany, decodeGet, decodeKeyOnly, decodeList, decodeVersionList, decodePut, directReadJson, infoJson, objectHeaders, resolveRange } from "./logic.ts";
import { bucketOf, collect, type StorageState } from "./state.ts";
import type { BodyTransport } from "./body.ts";

export function objectHandlers(s: StorageState, { withBody, offerDirect }: BodyTransport): Array<[ObjectOp, EndpointSpec["handler"]]> {
  const { ctx, jet, indexes, idleMs, versioning, versionOpt, stat } = s;
  const put = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const store = storeRef(bucket);
    const p = decodePut(req.header, req.headers ? req.headers.keys() : []);
    const opts = {
      ...(p.contentType !== undefined ? { contentType: p.contentType } : {}),
      userMeta: p.userMeta,
      ifNoneMatch: p.ifNoneMatch,
      ...(p.ifMatch !== undefined ? { ifMatch: p.ifMatch } : {}),
      ...(p.md5Hex !== undefined ? { expectMd5Hex: p.md5Hex } : {}),
      ...(p.sha256B64 !== undefined ? { expectSha256B64: p.sha256B64 } : {}),
      ...(p.etagKind === "sha256" ? { etag: "sha256" as const } : {}),
      signal: ctx.transfers,
      requestId: req.requestId,
      ...(await versionOpt(bucket)),
    };
    if (p.direct) {
      await assertStream(ctx.jsm, store.stream);
      await precheckPut(ctx.jsm, store, p.key, opts);
      return offerDirect(
        req,
        bucket,
        store,
        (claim, id, chunkSize) => commitClaim(jet, store, id, chunkSize, p.key, claim, opts),
        (m, info) => {
          countBytes("storage", "in", info.size);
          m.respond(JSON.stringify(infoJson(bucket, info)));
        },
        { key: p.key.slice(0, 128) },
      );
    }
    if (!p.stream) {
      // inline body (≤ INLINE_MAX): the small-object path (src/store/writer.ts putBytes)
      const info = await putBytes(jet, store, p.key, req.data, opts);
      countBytes("storage", "in", info.size);
      return infoJson(bucket, info);
    }
    return withBody(req, bucket, p.stream, "put", async (body) => {
      const info = await putObject(jet, store, p.key, body, opts);
      countBytes("storage", "in", info.size);
      return infoJson(bucket, info);
    });
  };

  const get = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const store = storeRef(bucket);
    const g = decodeGet(req.json());
    const info = await stat(bucket, store, g.key, g.versionId);
    checkConditions(info, g);
    const range = resolveRange(g.range, info.size);
    const n = range ? range.end - range.start + 1 : info.size;
    const headers = objectHeaders(info, range);
    if (n <= INLINE_MAX) {
      const body = await collect(readObject(ctx.jsm, store, info, range ? { range } : {}));
      countBytes("storage", "out", body.length);
      return rawReply(body, { ...headers, [H.inline]: "1" });
    }
    if (g.direct) {
      countBytes("storage", "out", n);
      return rawReply(JSON.stringify(directReadJson(store, info, range)), { ...headers, [H.inline]: "0", [H.direct]: "1" });
    }
    if (!g.stream) {
      throw new ShoalError("EntityTooLarge", `the object (or range) is ${n} bytes; a reply holds at most ${INLINE_MAX}: ask for a range, or stream it (give "stream": "<inbox>", as the SDK and \`shoal get\` do)`);
    }
    req.respond(rawReply("", { ...headers, [H.inline]: "0" }));
    try {
      await sendStream(ctx.nc, g.stream, readObject(ctx.jsm, store, info, range ? { range, signal: ctx.transfers } : { signal: ctx.transfers }), {
        windowBytes: g.window ?? DEFAULT_WINDOW,
        idleMs,
        signal: ctx.transfers,
      });
      countBytes("storage", "out", n);
    } catch (e) {
      req.log.info({ code: toShoalError(e).code, key: g.key.slice(0, 128) }, "streamed get ended early");
    }
    return undefined;
  };

  const head = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const k = decodeKeyOnly(req.json());
    const info = await stat(bucket, storeRef(bucket), k.key, k.versionId);
    checkConditions(info, k);
    return rawReply(JSON.stringify(infoJson(bucket, info)), objectHeaders(info));
  };

  const del = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const { key, versionId } = decodeKeyOnly(req.json());
    const store = storeRef(bucket);
    await assertStream(ctx.jsm, store.stream);
    if (versionId !== undefined) return { v: 1, ...(await deleteVersion(jet, store, key, versionId, undefined, req.requestId)) };
    return { v: 1, ...(await deleteObject(jet, store, key, undefined, req.requestId, await versionOpt(bucket))) };
  };

  const list = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const opts = decodeList(req.json());
    const page = (await indexes.ready(bucket)).page(opts);
    return { v: 1, bucket, prefix: opts.prefix ?? "", delimiter: opts.delimiter ?? null, maxKeys: opts.maxKeys, ...page };
  };

  /** ListObjectVersions: every version of every key (one pass over the bucket's metadata; see versions.ts). */
  const versions = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const opts = decodeVersionList(req.json());
    const store = storeRef(bucket);
    await assertStream(ctx.jsm, store.stream);
    return { v: 1, bucket, prefix: opts.prefix, delimiter: opts.delimiter ?? null, maxKeys: opts.maxKeys, ...pageVersions(await allVersions(ctx.js, ctx.jsm, store), opts) };
  };

  const deleteMany = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const keys = decodeDeleteMany(req.json());
    const store = storeRef(bucket);
    await assertStream(ctx.jsm, store.stream);
    const deleted: string[] = [];
    const errors: Array<{ key: string; code: string; message: string }> = [];
    const state = await versioning(bucket);
    // bounded parallelism: 16 deletes at a time
    for (let i = 0; i < keys.length; i += 16) {
      await Promise.all(
        keys.slice(i, i + 16).map(async (key) => {
          try {
            decodeKeyOnly({ key });
            const id = versionIdFor(state);
            await deleteObject(jet, store, key, undefined, req.requestId, id !== undefined ? { versionId: id } : {});
            deleted.push(key);
          } catch (e) {
            const err = toShoalError(e);
            errors.push({ key, code: err.code, message: err.message });
          }
        }),
      );
    }
    return { v: 1, deleted, errors };
  };

  const copy = async (req: Request) => {
    const bucket = bucketOf(req.subject);
    const c = decodeCopy(req.json());
    const src = storeRef(c.sourceBucket);
    const info = await stat(c.sourceBucket, src, c.sourceKey, c.sourceVersionId);
    checkConditions(info, c);
    const dest = storeRef(bucket);
    await assertStream(ctx.jsm, dest.stream);
    const replace = c.metadataDirective === "REPLACE";
    const out = await putObject(jet, dest, c.key, readObject(ctx.jsm, src, info, { signal: ctx.transfers }), {
      contentType: replace ? (c.contentType ?? "application/octet-stream") : info.contentType,
      userMeta: replace ? c.metadata : info.userMeta,
      signal: ctx.transfers,
      requestId: req.requestId,
      ...(await versionOpt(bucket)),
    });
    return { ...infoJson(bucket, out), ...(info.versionId !== undefined ? { sourceVersionId: info.versionId } : {}) };
  };

  return [
    ["put", put],
    ["get", get],
    ["head", head],
    ["delete", del],
    ["list", list],
    ["deletemany", deleteMany],
    ["copy", copy],
    ["versions", versions],
  ];
}
