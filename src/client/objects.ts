/**
 * Object calls (`shoal.v1.obj.<op>.<bucket>`, served by the storage actor):
 * put (inline, direct or streamed), get (inline, direct or streamed back),
 * head, delete, versions, copy and list.
 */
import { Readable } from "node:stream";
import { createInbox, nuid, type Msg } from "@nats-io/nats-core";
import { objectSubject } from "../subjects/index.ts";
import * as v1 from "../subjects/v1.ts";
import { H } from "../subjects/headers.ts";
import { StreamReceiver, DEFAULT_WINDOW } from "../transfer/index.ts";
import type { DirectRead } from "./direct.ts";
import { inMemory, metaFromHeaders, replyJson, type Wire } from "./wire.ts";
import type { VersionPage, VersionListOptions } from "../store/versions.ts";
import { INLINE_PUT_MAX, type Body, type Conditions, type CopyOptions, type DeleteManyResult, type DeleteResult, type GetOptions, type GetResult, type ListEntry, type ListOptions, type ListPage, type ObjectMeta, type PutOptions } from "./types.ts";

export async function put(w: Wire, bucket: string, key: string, body: Body, opts: PutOptions = {}): Promise<ObjectMeta> {
  const subject = objectSubject("put", bucket);
  const headers: Record<string, string> = { ...v1.putHeaders(key, { ...opts, etag: opts.etag ?? w.etag }), [H.requestId]: nuid.next() };
  const small = inMemory(body);
  if (small && small.byteLength <= INLINE_PUT_MAX) {
    // An unconditional put of the same bytes is idempotent: it is asked again
    // after the usual attempt. A request or its answer lost with a server
    // that died is then sent again within an attempt (a put waited 6 s for
    // an answer that never came while raw publishes were back after 4 s),
    // and an attempt that reaches the instance still working on an earlier
    // one answers with whichever succeeds first (src/runtime/actor.ts,
    // shared). A conditional put is asked once, and
    // given the time the actor's own retries take through an election.
    if (opts.ifNoneMatch || opts.ifMatch) return v1.decodeObjectInfoReply(replyJson(await w.request(subject, small, { headers, timeoutMs: w.timeoutMs + 5000 })));
    return w.idempotent(async () => v1.decodeObjectInfoReply(replyJson(await w.request(subject, small, { headers }))));
  }
  return w.sendLarge(bucket, subject, headers, body, opts, v1.decodeObjectInfoReply);
}

export async function get(w: Wire, bucket: string, key: string, opts: GetOptions = {}): Promise<GetResult> {
  const attempt = async (direct: boolean): Promise<GetResult> => {
    const inbox = createInbox();
    const receiver = new StreamReceiver(w.nc, inbox);
    let m: Msg;
    try {
      m = await w.request(subject, v1.encodeGet({ key, ...opts, stream: inbox, window: opts.windowBytes ?? DEFAULT_WINDOW, direct }));
    } catch (e) {
      receiver.sub.unsubscribe();
      throw e;
    }
    const info = metaFromHeaders(bucket, key, m);
    const inline = m.headers?.get(H.inline) === "1";
    let body: AsyncIterable<Uint8Array>;
    if (m.headers?.get(H.direct) === "1") {
      receiver.sub.unsubscribe();
      const read = await w.direct!.read(bucket, key, m.json<DirectRead>(), opts.signal);
      if (!read) return attempt(false); // this connection cannot read the stream: let the actor stream it
      body = read;
    } else if (inline) {
      receiver.sub.unsubscribe();
      const data = m.data;
      body = (async function* () {
        if (data.byteLength) yield data;
      })();
    } else body = receiver;
    const length = Number(m.headers?.get(H.size) ?? info.size);
    return {
      info,
      length,
      contentRange: m.headers?.get(H.contentRange) || undefined,
      body,
      stream: () => Readable.from(body, { objectMode: false }),
      bytes: async () => {
        const parts: Uint8Array[] = [];
        for await (const c of body) parts.push(c);
        return Buffer.concat(parts);
      },
    };
  };
  // checked before any attempt: an invalid bucket, key, range or condition is refused here
  const subject = objectSubject("get", bucket);
  v1.encodeGet({ key, ...opts, ...(opts.range !== undefined ? { range: opts.range } : {}) });
  return w.idempotent(() => attempt(w.direct?.usable(bucket) === true));
}

export function head(w: Wire, bucket: string, key: string, opts: Conditions & { versionId?: string } = {}): Promise<ObjectMeta> {
  return w.objCall("head", bucket, () => v1.encodeKeyOnly(key, opts), true, v1.decodeObjectInfoReply);
}

export function remove(w: Wire, bucket: string, key: string, opts: { versionId?: string } = {}): Promise<DeleteResult> {
  return w.objCall("delete", bucket, () => v1.encodeKeyOnly(key, opts), true, (o) => v1.checkReply<DeleteResult>(o, "delete", v1.REPLY.deleted));
}

export function listVersions(w: Wire, bucket: string, opts: VersionListOptions = {}): Promise<VersionPage> {
  return w.objCall("versions", bucket, () => v1.encodeVersionList(opts), true, (o) => v1.decodeVersionsReply<VersionPage>(o));
}

export function deleteMany(w: Wire, bucket: string, keys: string[]): Promise<DeleteManyResult> {
  return w.objCall("deletemany", bucket, () => v1.encodeDeleteMany(keys), true, (o) => v1.checkReply<DeleteManyResult>(o, "delete many", v1.REPLY.deleteMany));
}

export function copy(w: Wire, src: { bucket: string; key: string; versionId?: string }, dest: { bucket: string; key: string }, opts: CopyOptions = {}): Promise<ObjectMeta> {
  return w.objCall("copy", dest.bucket, () => v1.encodeCopy(src, dest.key, opts), false, v1.decodeObjectInfoReply);
}

export function listPage(w: Wire, bucket: string, opts: ListOptions = {}): Promise<ListPage> {
  return w.objCall("list", bucket, () => v1.encodeList(opts), true, (o) => v1.decodeListReply<ListPage>(o));
}

/** Every entry (objects, and common prefixes as `{ prefix }`), page by page. */
export async function* list(w: Wire, bucket: string, opts: Omit<ListOptions, "continuationToken"> = {}): AsyncGenerator<ListEntry | { prefix: string }> {
  let token: string | undefined;
  do {
    const page = await listPage(w, bucket, { ...opts, ...(token ? { continuationToken: token } : {}) });
    const items: Array<ListEntry | { prefix: string }> = [...page.contents, ...page.commonPrefixes.map((prefix) => ({ prefix }))];
    items.sort((a, b) => Buffer.compare(Buffer.from("key" in a ? a.key : a.prefix), Buffer.from("key" in b ? b.key : b.prefix)));
    yield* items;
    token = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (token);
}
