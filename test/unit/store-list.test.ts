import test from "ava";
import fc from "fast-check";
import { SortedKeys, listPage, type ListEntry } from "../../src/store/index.ts";

const entry = (key: string): ListEntry => ({ key, size: key.length, etag: "e", mtime: "m", revision: 1 });
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The S3 semantics, written the slow and obvious way. */
function model(all: string[], prefix: string, delimiter: string | undefined, maxKeys: number, after: string | undefined) {
  const keys = [...new Set(all)].sort(byteOrder).filter((k) => k.startsWith(prefix) && (after === undefined || byteOrder(k, after) > 0));
  const items: Array<{ kind: "key" | "cp"; v: string }> = [];
  for (const k of keys) {
    const d = delimiter ? k.indexOf(delimiter, prefix.length) : -1;
    if (delimiter && d >= 0) {
      const cp = k.slice(0, d + delimiter.length);
      if (items.at(-1)?.v !== cp) items.push({ kind: "cp", v: cp });
    } else items.push({ kind: "key", v: k });
  }
  // a common prefix equal to `after` was already returned on the previous page
  const fresh = items.filter((it) => !(it.kind === "cp" && after !== undefined && it.v === after));
  return { page: fresh.slice(0, maxKeys), truncated: fresh.length > maxKeys };
}

test("SortedKeys orders by UTF-8 bytes", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "grapheme", maxLength: 8 }), { maxLength: 50 }), (ks) => {
        const s = new SortedKeys();
        for (const k of ks) s.insert(k);
        const got = Array.from({ length: s.size }, (_, i) => s.at(i));
        return JSON.stringify(got) === JSON.stringify([...new Set(ks)].sort(byteOrder));
      }),
    ),
  );
});

test("listPage matches the S3 model, and paging with the token walks every item exactly once", (t) => {
  const key = fc.array(fc.constantFrom("a", "b", "/", "é", "z"), { maxLength: 6 }).map((x) => x.join(""));
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.array(key.filter((k) => k.length > 0), { maxLength: 40 }), fc.constantFrom("", "a", "a/", "b"), fc.constantFrom(undefined, "/"), fc.integer({ min: 1, max: 7 }), (ks, prefix, delimiter, maxKeys) => {
        const s = new SortedKeys();
        s.reset(ks);
        const all = model(ks, prefix, delimiter, 10_000, undefined).page.map((i) => i.v);
        const walked: string[] = [];
        let token: string | undefined;
        for (let guard = 0; guard < 100; guard++) {
          const p = listPage(s, entry, { prefix, delimiter, maxKeys, continuationToken: token });
          const items = [...p.contents.map((c) => c.key), ...p.commonPrefixes].sort(byteOrder);
          walked.push(...items);
          if (p.keyCount > maxKeys) return false;
          if (!p.isTruncated) break;
          token = p.nextContinuationToken;
          if (!token) return false;
        }
        return JSON.stringify(walked) === JSON.stringify(all);
      }),
    ),
  );
});

test("first page with start-after equals the model", (t) => {
  const s = new SortedKeys();
  const ks = ["a", "a/1", "a/2", "a/b/1", "b", "b/1", "c"];
  s.reset(ks);
  const p = listPage(s, entry, { delimiter: "/", startAfter: "a/1", maxKeys: 10 });
  const m = model(ks, "", "/", 10, "a/1");
  t.deepEqual([...p.contents.map((c) => c.key), ...p.commonPrefixes].sort(byteOrder), m.page.map((i) => i.v).sort(byteOrder));
});

test("a bad continuation token is a typed error", (t) => {
  const s = new SortedKeys();
  t.throws(() => listPage(s, entry, { continuationToken: "garbage!" }), { message: /continuation token/ });
});
