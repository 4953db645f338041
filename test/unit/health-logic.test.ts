import test from "ava";
import { ALERT_SEVERITY, Debounce, conditionsOf, learn, stalledOf, viewOf, type Snapshot } from "../../actors/health-monitor/logic.ts";

const snap = (o: Partial<Snapshot> = {}): Snapshot => ({
  time: 1000,
  servers: [{ name: "n1", jetstream: true }, { name: "n2", jetstream: true }, { name: "n3", jetstream: true, storage: 95, maxStorage: 100 }],
  metaLeader: "n1",
  streams: [
    { name: "OBJ_a", replicas: 3, leader: "n1", peers: [{ name: "n2", current: true, offline: false, lag: 0 }, { name: "n3", current: true, offline: false, lag: 0 }] },
    { name: "KV_x", replicas: 1, leader: "n1", peers: [] },
  ],
  actors: { storage: 2 },
  ...o,
});

test("stream-consumers-near-limit: a stream at 80% of its consumer limit (its own, else nats-server 2.15's 1000) warns; below it, none", (t) => {
  const known = { servers: ["n1", "n2", "n3"], actorKinds: [] };
  const st = (name: string, consumers: number, maxConsumers?: number) => ({ name, replicas: 1, leader: "n1", peers: [], consumers, ...(maxConsumers !== undefined ? { maxConsumers } : {}) });
  const near = conditionsOf(snap({ streams: [st("OBJ_read", 800), st("OBJ_ok", 799), st("OBJ_own", 40, 50), st("OBJ_big", 5000, 100_000), st("OBJ_minus", 900, -1)] }), known, 0.99).filter((c) => c.code === "stream-consumers-near-limit");
  t.deepEqual(near.map((c) => c.id).sort(), ["stream-consumers-near-limit.OBJ_minus", "stream-consumers-near-limit.OBJ_own", "stream-consumers-near-limit.OBJ_read"]);
  t.is(ALERT_SEVERITY["stream-consumers-near-limit"], "warning");
  t.regex(near.find((c) => c.subject === "OBJ_read")!.message, /800 of the 1000 consumers/);
});

test("conditions: down servers, lost meta leader, under-replicated streams (also via a down peer), missing actor kinds, storage near its limit", (t) => {
  const known = { servers: ["n1", "n2", "n3"], actorKinds: ["replicator", "storage"] };
  const ids = (s: Snapshot) => conditionsOf(s, known, 0.9).map((c) => c.id).sort();
  t.deepEqual(ids(snap()), ["actor-kind-missing.replicator", "storage-near-limit.n3"]);
  const down = snap({ servers: [{ name: "n1", jetstream: true }, { name: "n3", jetstream: true }], metaLeader: null });
  t.deepEqual(ids(down), ["actor-kind-missing.replicator", "meta-leader-lost.jetstream", "server-down.n2", "stream-under-replicated.OBJ_a"]);
  const lagging = snap({ streams: [{ name: "OBJ_b", replicas: 3, leader: "n1", peers: [{ name: "n2", current: false, offline: false, lag: 9 }, { name: "n3", current: true, offline: false, lag: 0 }] }] });
  t.true(ids(lagging).includes("stream-under-replicated.OBJ_b"));
  t.true(ids(snap({ streams: [{ name: "OBJ_c", replicas: 3, leader: null, peers: [] }] })).includes("stream-under-replicated.OBJ_c"));
  t.deepEqual(conditionsOf(snap({ metaLeader: undefined }), { servers: [], actorKinds: [] }, 0.99), [], "a single server, nothing known yet, nothing wrong");
});

test("restate-stalled: one warning per bucket a storage instance reports stalled copies for; none for zero; junk in a heartbeat's status ignored", (t) => {
  const known = { servers: ["n1", "n2", "n3"], actorKinds: ["storage"] };
  const stalled = conditionsOf(snap({ restateStalled: { photos: 2, logs: 0, "a.b": 1 } }), known, 0.99).filter((c) => c.code === "restate-stalled");
  t.deepEqual(stalled.map((c) => c.id).sort(), ["restate-stalled.a_b", "restate-stalled.photos"]);
  t.is(ALERT_SEVERITY["restate-stalled"], "warning");
  const photos = stalled.find((c) => c.subject === "photos")!;
  t.is(photos.severity, "warning");
  t.regex(photos.message, /bucket photos: 2 multipart objects still not copied into the stock form/);
  t.deepEqual(conditionsOf(snap({ restateStalled: {} }), known, 0.99).filter((c) => c.code === "restate-stalled"), []);
  t.deepEqual(stalledOf({ restateStalled: { a: 3, b: 0, c: "x", d: -1, e: Infinity } }), { a: 3 });
  for (const junk of [undefined, null, 7, "s", { restateStalled: [1] }, { restateStalled: "x" }, { other: 1 }]) t.deepEqual(stalledOf(junk), {}, JSON.stringify(junk));
});

test("learn keeps every server that answered and every kind that was live", (t) => {
  const k = learn({ servers: ["n9"], actorKinds: [] }, snap({ actors: { storage: 1, replicator: 0 } }));
  t.deepEqual(k, { servers: ["n1", "n2", "n3", "n9"], actorKinds: ["storage"] });
});

test("debounce: held after the delay, gone after the delay, flapping resets", (t) => {
  const d = new Debounce(1000);
  t.deepEqual([...d.update(0, ["a"], []).held], []);
  t.deepEqual([...d.update(999, ["a"], []).held], []);
  t.deepEqual([...d.update(1000, ["a"], []).held], ["a"]);
  t.deepEqual([...d.update(1500, [], ["a"]).gone], []);
  t.deepEqual([...d.update(1600, ["a"], ["a"]).held], [], "it came back: the clock restarts");
  t.deepEqual([...d.update(2000, [], ["a"]).gone], []);
  t.deepEqual([...d.update(3000, [], ["a"]).gone], ["a"]);
  t.deepEqual([...d.update(0, [], ["restored"]).gone], [], "an alert from the store (after a restart) needs the full delay to resolve");
});

test("the view is healthy only without conditions, and lists servers known but down", (t) => {
  const known = { servers: ["n1", "n2", "n3", "n4"], actorKinds: ["storage"] };
  const s = snap();
  const v = viewOf(s, known, conditionsOf(s, known, 0.99), [], "me");
  t.false(v.healthy);
  t.deepEqual(v.servers.filter((x) => !x.up).map((x) => x.name), ["n4"]);
  const ok = viewOf(s, { servers: ["n1", "n2", "n3"], actorKinds: ["storage"] }, [], [], "me");
  t.true(ok.healthy);
  t.deepEqual(ok.actors, [{ kind: "storage", live: 2 }]);
});

test("the view counts each stream's replicas as current, lagging or offline (a peer on a down server is offline even while the leader still calls it current)", (t) => {
  const known = { servers: ["n1", "n2", "n3"], actorKinds: [] };
  const counts = (s: Snapshot) => viewOf(s, known, conditionsOf(s, known, 1), [], "me").streams.map(({ name, current, lagging, offline }) => ({ name, current, lagging, offline }));
  t.deepEqual(counts(snap())[0], { name: "OBJ_a", current: 3, lagging: 0, offline: 0 });
  const n3down = snap({ servers: [{ name: "n1", jetstream: true }, { name: "n2", jetstream: true }] });
  t.deepEqual(counts(n3down)[0], { name: "OBJ_a", current: 2, lagging: 0, offline: 1 });
  const lag = snap({ streams: [{ name: "OBJ_b", replicas: 3, leader: "n1", peers: [{ name: "n2", current: false, offline: false, lag: 4 }] }] });
  t.deepEqual(counts(lag)[0], { name: "OBJ_b", current: 1, lagging: 1, offline: 1 }, "a missing peer counts as offline");
  t.deepEqual(counts(snap({ streams: [{ name: "OBJ_c", replicas: 3, leader: null, peers: [], unreadable: true }] }))[0], { name: "OBJ_c", current: 0, lagging: 0, offline: 3 });
});

test("a shared stream below its intended replicas is under-replicated, whatever its own replicas say; at or above it, it is judged as any stream", (t) => {
  const known = { servers: ["n1", "n2", "n3"], actorKinds: ["storage"] };
  const conds = (streams: Snapshot["streams"]) => conditionsOf(snap({ servers: [{ name: "n1", jetstream: true }, { name: "n2", jetstream: true }, { name: "n3", jetstream: true }], streams }), known, 0.9);
  const low = conds([{ name: "KV_shoal_buckets", replicas: 1, leader: "n1", peers: [], intended: 3 }]);
  t.deepEqual(low.map((c) => c.id), ["stream-under-replicated.KV_shoal_buckets"]);
  t.regex(low[0]!.message, /R1, meant to be R3/);
  t.deepEqual(conds([{ name: "KV_shoal_buckets", replicas: 1, leader: "local", peers: [], intended: 1 }]), [], "a single server: R1 is what is meant");
  const ok = [{ name: "n2", current: true, offline: false, lag: 0 }, { name: "n3", current: true, offline: false, lag: 0 }];
  t.deepEqual(conds([{ name: "SHOAL_EVENTS", replicas: 3, leader: "n1", peers: ok, intended: 3 }]), []);
  t.deepEqual(conds([{ name: "KV_x", replicas: 1, leader: "n1", peers: [] }]).length, 0, "no intent known: an R1 stream is not judged");
  const v = viewOf(snap({ streams: [{ name: "KV_shoal_buckets", replicas: 1, leader: "n1", peers: [], intended: 3 }] }), known, low, [], "hm");
  t.deepEqual(v.underReplicated, ["KV_shoal_buckets"]);
  t.false(v.healthy);
});
