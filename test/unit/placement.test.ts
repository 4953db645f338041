/**
 * Laws of the placement function (src/placement): properties over random
 * clusters (fast-check; a failure prints its seed and counterexample).
 */
import test from "ava";
import fc from "fast-check";
import { DEFAULT_POLICY, applyMoves, leaderBound, loads, plan, rendezvousOrder, safeToStop, serverLoads, type PlacementServer, type PlacementStream, type ServerState } from "../../src/placement/index.ts";

const names = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`);

/** A cluster: servers (some not up), streams placed on up servers as JetStream would have placed them. */
const clusterArb = (o: { equalSizes?: boolean; allUp?: boolean } = {}) =>
  fc
    .record({
      n: fc.integer({ min: 1, max: 7 }),
      states: fc.array(fc.constantFrom<ServerState>("up", "up", "up", "suspect", "down", "drained"), { minLength: 7, maxLength: 7 }),
      streams: fc.array(
        fc.record({ r: fc.constantFrom(1, 3, 5), bytes: o.equalSizes ? fc.constant(1 << 20) : fc.integer({ min: 0, max: 1 << 30 }), seed: fc.integer({ min: 0, max: 1 << 30 }), leaderAt: fc.nat() }),
        { maxLength: 40 },
      ),
    })
    .map(({ n, states, streams }) => {
      const servers: PlacementServer[] = names(n).map((name, i) => ({ name, state: o.allUp ? "up" : states[i]! }));
      const all = servers.map((s) => s.name);
      const placed: PlacementStream[] = [];
      streams.forEach((s, i) => {
        if (s.r > all.length) return;
        const peers = rendezvousOrder(`S${i}.${s.seed}`, all).slice(0, s.r);
        placed.push({ name: `S${i}`, replicas: s.r, bytes: s.bytes, peers, leader: peers[s.leaderAt % peers.length]! });
      });
      return { servers, streams: placed };
    });

const PARAMS = { numRuns: Number(process.env["SHOAL_PROP_RUNS"] ?? 300) } as const;

test("a plan never puts two replicas of a stream on one server, and keeps each stream's replica count", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(), ({ servers, streams }) => {
        const after = applyMoves(streams, plan(servers, streams));
        for (const st of after) {
          if (new Set(st.peers).size !== st.peers.length) return false;
          if (st.peers.length !== streams.find((s) => s.name === st.name)!.peers.length) return false;
          if (st.leader && !st.peers.includes(st.leader)) return false;
        }
        return true;
      }),
      PARAMS,
    ),
  );
});

test("a plan never targets a server that is down, suspect or drained; nothing is left on down or drained servers when a live server can take it", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(), ({ servers, streams }) => {
        const state = new Map(servers.map((s) => [s.name, s.state]));
        const moves = plan(servers, streams);
        if (moves.some((m) => state.get(m.to) !== "up")) return false;
        const after = applyMoves(streams, moves);
        const live = servers.filter((s) => s.state === "up").length;
        for (const st of after) {
          const off = st.peers.filter((p) => state.get(p) === "down" || state.get(p) === "drained");
          // a stream keeps a replica on a gone server only when every live server already holds one
          if (off.length > 0 && st.peers.length - off.length < live) return false;
        }
        return true;
      }),
      PARAMS,
    ),
  );
});

test("after a plan: loads are within ±10% of the mean, or no replica can move from a server above the mean to one below it without the two crossing; leaders are within ⌈streams/servers⌉+1", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb({ allUp: true }), ({ servers, streams }) => {
        const after = applyMoves(streams, plan(servers, streams));
        const { mean, load } = serverLoads(servers, after);
        for (const [f, lf] of load) {
          for (const [to, lt] of load) {
            if (lf <= mean * 1.1 && lt >= mean * 0.9) continue;
            if (!(lf > mean && lt < mean)) continue;
            // the planner stops only when no stream fits between f and to
            if (after.some((st) => st.bytes > 0 && lt + st.bytes <= lf - st.bytes && st.peers.includes(f) && !st.peers.includes(to))) return false;
          }
        }
        const bound = leaderBound(servers, after);
        for (const [, n] of loads(after).leaders) if (n > bound + 1) return false;
        return true;
      }),
      PARAMS,
    ),
  );
});

test("with equal-sized streams and enough of them, every server ends within ±10% of the mean (or within one replica of it)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb({ allUp: true, equalSizes: true }), ({ servers, streams }) => {
        const after = applyMoves(streams, plan(servers, streams));
        const { mean, load } = serverLoads(servers, after);
        const one = 1 << 20;
        for (const l of load.values()) if (Math.abs(l - mean) > Math.max(0.1 * mean, one)) return false;
        return true;
      }),
      PARAMS,
    ),
  );
});

test("adding one server to n balanced servers moves at most ~1/(n+1) of the replicas (bytes moved ≤ total/(n+1) + one stream)", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb({ allUp: true, equalSizes: true }), fc.boolean(), ({ servers, streams }, sized) => {
        const sizes = streams.map((s, i) => ({ ...s, bytes: sized ? (1 + (i % 4)) << 20 : s.bytes }));
        const balanced = applyMoves(sizes, plan(servers, sizes));
        const bigger = [...servers, { name: "new", state: "up" as const }];
        const moves = plan(bigger, balanced, { ...DEFAULT_POLICY, leaders: false });
        const totalReplicas = balanced.reduce((a, s) => a + s.peers.length, 0);
        const totalBytes = balanced.reduce((a, s) => a + s.bytes * s.peers.length, 0);
        const maxStream = Math.max(0, ...balanced.map((s) => s.bytes));
        const n = servers.length;
        const movedBytes = moves.reduce((a, m) => a + m.bytes, 0);
        if (movedBytes > totalBytes / (n + 1) + maxStream) return false;
        if (!sized && moves.length > Math.ceil(totalReplicas / (n + 1)) + 1) return false;
        // with equal sizes every move goes to the new server; with mixed sizes a small move between old servers may even out what a big one left
        return sized || moves.every((m) => m.to === "new");
      }),
      PARAMS,
    ),
  );
});

test("removing one server moves only that server's replicas", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb({ allUp: true }), fc.nat(), ({ servers, streams }, k) => {
        if (servers.length < 2) return true;
        const balanced = applyMoves(streams, plan(servers, streams));
        const gone = servers[k % servers.length]!.name;
        const after = servers.map((s) => (s.name === gone ? { ...s, state: "down" as const } : s));
        const moves = plan(after, balanced, { ...DEFAULT_POLICY, balance: false, leaders: false });
        const held = balanced.filter((s) => s.peers.includes(gone));
        if (moves.some((m) => m.from !== gone)) return false;
        // each of its replicas moves once, where a server can take it
        return moves.length <= held.length;
      }),
      PARAMS,
    ),
  );
});

test("a plan applied is a fixed point: planning again gives no moves", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(), ({ servers, streams }) => {
        const after = applyMoves(streams, plan(servers, streams));
        return plan(servers, after).length === 0;
      }),
      PARAMS,
    ),
  );
});

test("plans are deterministic and do not depend on the order servers and streams are listed in", (t) => {
  t.notThrows(() =>
    fc.assert(
      fc.property(clusterArb(), ({ servers, streams }) => {
        const a = plan(servers, streams);
        const b = plan([...servers].reverse(), [...streams].reverse());
        return JSON.stringify(a) === JSON.stringify(b);
      }),
      PARAMS,
    ),
  );
});

test("examples: a 4th server takes a quarter of 12 R3 streams; a drained server empties and is then safe to stop; leaders spread", (t) => {
  const s3: PlacementServer[] = names(3).map((name) => ({ name, state: "up" }));
  const streams: PlacementStream[] = Array.from({ length: 12 }, (_, i) => ({ name: `OBJ_b${i}`, replicas: 3, bytes: 10 << 20, peers: ["n1", "n2", "n3"], leader: "n1" }));
  const led = applyMoves(streams, plan(s3, streams));
  t.deepEqual([...loads(led).leaders.values()].sort(), [4, 4, 4]);
  const s4 = [...s3, { name: "n4", state: "up" as const }];
  const moves = plan(s4, led).filter((m) => m.kind === "replica");
  t.is(moves.length, 9, "36 replicas over 4 servers: n4 takes 9");
  const after = applyMoves(led, plan(s4, led));
  t.deepEqual([...loads(after).replicas.values()].sort(), [9, 9, 9, 9]);
  const drained = s4.map((s) => (s.name === "n2" ? { ...s, state: "drained" as const } : s));
  t.false(safeToStop("n2", after));
  const d = applyMoves(after, plan(drained, after));
  t.true(safeToStop("n2", d));
  t.deepEqual(plan(drained, d), []);
});

test("a stream's replica on a dead server is replaced before one on a drained server", (t) => {
  const servers: PlacementServer[] = [
    { name: "n1", state: "down" },
    { name: "n2", state: "up" },
    { name: "n3", state: "drained" },
    { name: "n4", state: "up" },
    { name: "n5", state: "up" },
  ];
  const moves = plan(servers, [{ name: "S", replicas: 3, bytes: 1, peers: ["n3", "n2", "n1"], leader: "n2" }]).filter((m) => m.kind === "replica");
  t.deepEqual(moves.map((m) => [m.from, m.reason]), [["n1", "repair"], ["n3", "drain"]]);
});

test("a stream with a member more than its replica count, the extra on a dead or drained server and every live server a member already, loses the extra (a peer remove, no replacement); CI saw such a stream never converge", (t) => {
  const servers: PlacementServer[] = [
    { name: "n1", state: "up" },
    { name: "n2", state: "up" },
    { name: "n3", state: "down" },
    { name: "n4", state: "drained" },
    { name: "n5", state: "up" },
  ];
  for (const extra of ["n4", "n3"]) {
    const st: PlacementStream = { name: "KV_shoal_bucket_settings", replicas: 3, bytes: 0, peers: ["n1", "n2", "n5", extra], leader: extra };
    const moves = plan(servers, [st]);
    t.deepEqual(moves.map((m) => m.kind === "replica" && [m.from, m.to, m.reason]), [[extra, "-", "repair"]], extra);
    const after = applyMoves([st], moves)[0]!;
    t.deepEqual([...after.peers].sort(), ["n1", "n2", "n5"]);
    t.true(after.leader !== null && after.peers.includes(after.leader), "a member leads");
    t.deepEqual(plan(servers, [after]), [], "a fixed point");
  }
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.constantFrom(1, 3, 5), fc.constantFrom<ServerState>("down", "drained"), fc.integer({ min: 0, max: 1 << 30 }), (live, r, state, seed) => {
        fc.pre(r <= live);
        const servers: PlacementServer[] = [...names(live).map((name) => ({ name, state: "up" as const })), { name: "gone", state }];
        const members = rendezvousOrder(`S${seed}`, names(live)).slice(0, r);
        const st: PlacementStream = { name: `S${seed}`, replicas: r, bytes: 1, peers: [...members, "gone"], leader: members[0]! };
        const after = applyMoves([st], plan(servers, [st]))[0]!;
        return after.peers.length === r && !after.peers.includes("gone") && new Set(after.peers).size === r;
      }),
    ),
  );
});

test("leaderships go to a member that leads two fewer when no member is under the bound; every over-full server is tried (seed 1051183060: three of five leaderships on one server of five)", (t) => {
  const servers = ["n1", "n2", "n3", "n4", "n5"].map((name) => ({ name, state: "up" as const }));
  const st = (name: string, replicas: number, bytes: number, peers: string[], leader: string): PlacementStream => ({ name, replicas, bytes, peers, leader });
  const streams = [
    st("S0", 5, 0, ["n5", "n2", "n3", "n1", "n4"], "n5"),
    st("S1", 5, 0, ["n3", "n1", "n4", "n5", "n2"], "n1"),
    st("S2", 1, 0, ["n3"], "n3"),
    st("S3", 3, 1, ["n2", "n4", "n5"], "n2"),
    st("S4", 3, 1, ["n4", "n1", "n2"], "n4"),
    st("S5", 1, 3, ["n4"], "n4"),
    st("S6", 3, 1, ["n1", "n4", "n5"], "n4"),
    st("S7", 1, 3, ["n2"], "n2"),
  ];
  const after = applyMoves(streams, plan(servers, streams));
  const led = loads(after).leaders;
  t.true(Math.max(...led.values()) <= leaderBound(servers, after) + 1, JSON.stringify([...led]));
  t.true(Math.max(...led.values()) <= 2);
});
