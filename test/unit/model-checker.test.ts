/**
 * The model test's checker (test/helpers/model.ts) must be able to fail: each
 * violation it exists to catch is fed to it here, with no cluster.
 */
import test from "ava";
import { ABSENT, Contents, Model, Violation, checkEvents, contentBytes, md5hex, multipartEtag, sha256b64url, type EventLike, type WriteRecord } from "../helpers/model.ts";

const KEYS = ["a", "a/1", "b"];

test("contents: bytes name their version; one changed byte names none", (t) => {
  const c = new Contents();
  const x = c.make(300_000);
  const y = c.make(300_000);
  t.deepEqual(c.identify(x.bytes), { cid: x.cid, size: 300_000 });
  t.deepEqual(c.identify(y.bytes), { cid: y.cid, size: 300_000 });
  t.true(contentBytes(x.cid, 300_000).equals(x.bytes));
  const mixed = Buffer.concat([x.bytes.subarray(0, 131_072), y.bytes.subarray(131_072)]);
  t.is(c.identify(mixed), undefined);
  // two empty bodies are the same bytes: the digest names both, the caller picks the one the key may hold
  const e1 = c.make(0);
  const e2 = c.make(0);
  t.is(c.identify(e2.bytes, (cid) => cid === e1.cid)?.cid, e1.cid);
  t.is(c.identify(e1.bytes, (cid) => cid === e2.cid)?.cid, e2.cid);
  t.is(multipartEtag([Buffer.from("ab")]), `${md5hex(Buffer.from(md5hex(Buffer.from("ab")), "hex"))}-1`);
});

test("reads: an acknowledged write must be seen; an unknown one may be, once; an older acknowledged state never", (t) => {
  const m = new Model(KEYS);
  m.ackCreate("a", { cid: 1, size: 1 }, "s1");
  t.throws(() => m.observe("a", ABSENT, "get"), { instanceOf: Violation });
  m.ackCreate("a", { cid: 2, size: 1 }, "s2");
  t.throws(() => m.observe("a", { cid: 1, size: 1 }, "get"), { instanceOf: Violation }, "the older acknowledged version is gone");
  m.ambiguousCreate("a", { cid: 3, size: 1 }, "s3");
  t.notThrows(() => m.observe("a", { cid: 2, size: 1 }, "get"));
  t.notThrows(() => m.observe("a", { cid: 3, size: 1 }, "get"), "a write with an unknown outcome may land later");
  t.throws(() => m.observe("a", { cid: 2, size: 1 }, "get"), { instanceOf: Violation }, "once it landed, the state before it is gone");
  m.ackDelete("a", true);
  t.throws(() => m.observe("a", { cid: 3, size: 1 }, "get"), { instanceOf: Violation }, "an unknown write lands at most once");
  t.true(m.lost >= 4);
  t.throws(() => m.ackDelete("b", true), { instanceOf: Violation }, "deleted:true for a key never written");
  m.ackCreate("b", { cid: 4, size: 1 }, "s4");
  t.throws(() => m.ackDelete("b", false), { instanceOf: Violation }, "deleted:false for a present key");
});

test("lists: order, completeness, deleted keys, common prefixes", (t) => {
  const m = new Model(KEYS);
  m.ackCreate("a", { cid: 1, size: 5, etag: "e1" }, "s1");
  m.ackCreate("a/1", { cid: 2, size: 6, etag: "e2" }, "s2");
  const a = { key: "a", etag: "e1", size: 5 };
  const a1 = { key: "a/1", etag: "e2", size: 6 };
  t.notThrows(() => m.checkList({ prefix: "" }, [a, a1], [], ["a", "a/1"]));
  t.throws(() => m.checkList({ prefix: "" }, [a1, a], [], ["a/1", "a"]), { instanceOf: Violation }, "out of order");
  t.throws(() => m.checkList({ prefix: "" }, [a, a], [], ["a", "a"]), { instanceOf: Violation }, "a duplicate across pages");
  t.throws(() => m.checkList({ prefix: "" }, [a], [], ["a"]), { instanceOf: Violation }, "a missing key");
  t.throws(() => m.checkList({ prefix: "" }, [a, a1, { key: "b", etag: "x", size: 1 }], [], ["a", "a/1", "b"]), { instanceOf: Violation }, "a key never written");
  t.throws(() => m.checkList({ prefix: "" }, [{ ...a, etag: "old" }, a1], [], ["a", "a/1"]), { instanceOf: Violation }, "a stale version");
  t.notThrows(() => m.checkList({ prefix: "", delimiter: "/" }, [a], ["a/"], ["a", "a/"]));
  t.throws(() => m.checkList({ prefix: "", delimiter: "/" }, [a], [], ["a"]), { instanceOf: Violation }, "a missing common prefix");
  t.throws(() => m.checkList({ prefix: "", delimiter: "/" }, [a], ["a/", "b/"], ["a", "a/", "b/"]), { instanceOf: Violation }, "a common prefix with no key under it");
  m.ackDelete("a", true);
  t.throws(() => m.checkList({ prefix: "" }, [a, a1], [], ["a", "a/1"]), { instanceOf: Violation }, "a deleted key");
});

const ev = (key: string, seq: number, o: Partial<EventLike> = {}): EventLike => ({ eventName: "s3:ObjectCreated:Put", key, size: 1, sha256: `s${seq}`, revision: seq, source: { stream: "OBJ_x", seq }, ...o });
const del = (key: string, seq: number): EventLike => ({ eventName: "s3:ObjectRemoved:Delete", key, size: 0, revision: seq, source: { stream: "OBJ_x", seq } });

test("events: exactly one per acknowledged change, at most one per unknown one, consistent with the final state", (t) => {
  const writes: WriteRecord[] = [
    { n: 0, key: "a", kind: "create", outcome: "acked", cid: 1, size: 1, sha256: "s3", revision: 3 },
    { n: 1, key: "a", kind: "create", outcome: "ambiguous", cid: 2, size: 1, sha256: "s5" },
    { n: 2, key: "a", kind: "delete", outcome: "acked", deleted: true },
    { n: 3, key: "b", kind: "create", outcome: "acked", cid: 3, size: 1, sha256: "s9", revision: 9 },
  ];
  const fin = new Map([
    ["a", { present: false as const }],
    ["b", { present: true as const, revision: 9 }],
  ]);
  const good = [ev("a", 3), ev("a", 5), del("a", 7), ev("b", 9)];
  t.notThrows(() => checkEvents(writes, good, fin));
  t.notThrows(() => checkEvents(writes, [ev("a", 3), del("a", 7), ev("b", 9)], fin), "the unknown write did not land");
  t.throws(() => checkEvents(writes, [ev("a", 3), ev("a", 5), del("a", 7), ev("b", 9), ev("b", 9)], fin), { message: /E1/ });
  t.throws(() => checkEvents(writes, [ev("a", 5), del("a", 7), ev("b", 9)], fin), { message: /E2/ });
  t.throws(() => checkEvents(writes, [ev("a", 3), ev("a", 5), ev("a", 6, { sha256: "s5" }), del("a", 7), ev("b", 9)], fin), { message: /E3/ });
  t.throws(() => checkEvents(writes, [ev("a", 3), ev("a", 5), ev("b", 9)], fin), { message: /E5/ });
  t.throws(() => checkEvents(writes, [ev("a", 3), del("a", 4), ev("a", 5), ev("b", 9)], fin), { message: /E6/ }, "the delete's event before the unknown write's: the key would end present");
  const reordered: WriteRecord[] = [writes[3]!, { ...writes[0]!, n: 4 }];
  t.throws(() => checkEvents(reordered, [ev("a", 3), ev("b", 9)], new Map([["a", { present: true as const, revision: 3 }], ["b", { present: true as const, revision: 9 }]])), { message: /E4/ });
  t.throws(() => checkEvents(writes, [ev("a", 3), ev("a", 5), del("a", 7), ev("b", 9, { size: 2 })], fin), { message: /E2/ }, "an event that misstates the change");
  t.is(sha256b64url(Buffer.from("x")).includes("="), false);
});

test("events: a composed multipart object's event, which has no SHA-256, is matched by its multipart ETag", (t) => {
  const etag = `${"a".repeat(32)}-2`;
  const writes: WriteRecord[] = [
    { n: 0, key: "m", kind: "create", outcome: "acked", cid: 1, size: 1, sha256: "s3", etag, revision: 3 },
    { n: 1, key: "m", kind: "create", outcome: "ambiguous", cid: 2, size: 1, sha256: "s5", etag: `${"b".repeat(32)}-2` },
  ];
  const fin = new Map([["m", { present: true as const, revision: 5 }]]);
  t.notThrows(() => checkEvents(writes, [ev("m", 3, { sha256: "", etag }), ev("m", 5, { sha256: "", etag: `${"b".repeat(32)}-2` })], fin));
  t.throws(() => checkEvents(writes, [ev("m", 3, { sha256: "", etag: `${"c".repeat(32)}-2` })], new Map([["m", { present: true as const, revision: 3 }]])), { message: /E2/ }, "another ETag");
  t.throws(() => checkEvents([{ ...writes[0]!, etag: "a".repeat(32) }], [ev("m", 3, { sha256: "", etag: "a".repeat(32) })], new Map([["m", { present: true as const, revision: 3 }]])), { message: /E2/ }, "no digest and not a multipart ETag");
});
