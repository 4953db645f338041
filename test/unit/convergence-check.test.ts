/**
 * The convergence property's balance check (test/helpers/rebalance.ts
 * convergenceProblem): it must flag a balance the rebalancer could still fix,
 * and not one that replica counts forbid.
 */
import test from "ava";
import { convergenceProblem, type StreamView } from "../helpers/rebalance.ts";

const stream = (name: string, bytes: number, peers: string[], leader = peers[0]!): StreamView => ({ name, replicas: peers.length, bytes, leader, peers, allCurrent: true });
const live = ["n1", "n3", "n4", "n5"];

test("one dominant R3 stream on 4 servers: a KV stream of a few KB left on the fullest server does not count as a fix (CI seed 895264204)", (t) => {
  const streams = [
    stream("OBJ_cvg", 463_000_000, ["n1", "n3", "n5"]),
    stream("KV_shoal_buckets", 400, ["n5", "n1", "n3"], "n1"),
    stream("KV_shoal_actors", 600, ["n4", "n3", "n1"], "n3"),
    stream("KV_shoal_plans", 2000, ["n4", "n5", "n1"], "n4"),
  ];
  t.is(convergenceProblem(streams, live, ["n2"]), "");
});

test("a bucket stream that could move from the fullest to the emptiest server is still flagged", (t) => {
  const streams = [
    stream("OBJ_a", 100_000_000, ["n1", "n3", "n5"]),
    stream("OBJ_b", 100_000_000, ["n1", "n3", "n5"], "n3"),
    stream("OBJ_c", 100_000_000, ["n1", "n3", "n5"], "n5"),
    stream("OBJ_d", 100_000_000, ["n1", "n3", "n4"], "n4"),
  ];
  t.regex(convergenceProblem(streams, live, ["n2"]), /^unbalanced: n[135] 400000000 B, n4 100000000 B/);
});
