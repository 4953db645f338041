import test from "ava";
import { ASTRAY_HOLD_MS, DEFAULT_REBALANCE_POLICY, command, holdAstray, wentAstray, emptyBook, eta, leaseDecision, observe, paceMs, parsePolicy, serverRows, serverStates } from "../../actors/rebalancer/logic.ts";
import { ShoalError } from "../../src/errors/index.ts";

const book = () => observe(emptyBook(), ["n1", "n2", "n3"], 1000);

test("server states: not answering is suspect within the grace and down after it; a repair request makes it down at once; removed is down even when it answers; drained answers as drained", (t) => {
  const b = book();
  const answered = new Set(["n1", "n3"]);
  const state = (bk = b, now = 2000, grace = 5000, ans = answered) => Object.fromEntries(serverStates(bk, ans, now, grace).map((s) => [s.name, s.state]));
  t.deepEqual(state(), { n1: "up", n2: "suspect", n3: "up" });
  t.deepEqual(state(b, 6000), { n1: "up", n2: "down", n3: "up" });
  t.deepEqual(state(command(b, "n2", "repair")), { n1: "up", n2: "down", n3: "up" });
  t.deepEqual(state(command(b, "n3", "remove")), { n1: "up", n2: "suspect", n3: "down" });
  t.deepEqual(state(command(b, "n3", "drain")), { n1: "up", n2: "suspect", n3: "drained" });
  t.deepEqual(state(command(command(b, "n3", "drain"), "n3", "undrain")), { n1: "up", n2: "suspect", n3: "up" });
  // answering again clears a repair request, keeps the operator's mark
  const back = observe(command(command(b, "n2", "repair"), "n3", "drain"), ["n2", "n3"], 3000);
  t.is(back.servers["n2"]!.repair, undefined);
  t.is(back.servers["n3"]!.mark, "drained");
});

test("commands on a server never seen are NoSuchServer", (t) => {
  const e = t.throws(() => command(book(), "n9", "drain"));
  t.true(e instanceof ShoalError);
  t.is((e as ShoalError).code, "NoSuchServer");
});

test("lease: take a free or lapsed one, renew our own, wait for a live one held by another", (t) => {
  t.is(leaseDecision(null, "a", 10), "take");
  t.is(leaseDecision({ v: 1, owner: "a", until: 5 }, "a", 10), "renew");
  t.is(leaseDecision({ v: 1, owner: "b", until: 50 }, "a", 10), "wait");
  t.is(leaseDecision({ v: 1, owner: "b", until: 5 }, "a", 10), "take");
});

test("pacing and ETA", (t) => {
  t.is(paceMs(32 << 20, 250, 32 << 20), 750);
  t.is(paceMs(1 << 20, 5000, 32 << 20), 0);
  t.is(eta(0, 10, 10, 1), 0);
  t.is(eta(100, 0, 0, 10), 10, "nothing done yet: the configured pace");
  t.is(eta(100, 50, 10_000, 1000), 20, "5 B/s seen: 20 s left");
});

test("policy overrides are validated", (t) => {
  t.is(parsePolicy({ maxBytesPerSec: 1 << 20 }).maxBytesPerSec, 1 << 20);
  t.deepEqual(parsePolicy(null), { ...DEFAULT_REBALANCE_POLICY });
  for (const bad of [{ tolerance: -1 }, { auto: "yes" }, { nope: 1 }, [], "x", { maxConcurrent: 0 }]) {
    const e = t.throws(() => parsePolicy(bad), undefined, JSON.stringify(bad));
    t.is((e as ShoalError).code, "InvalidArgument");
  }
});

test("server rows count bytes, replicas and leaders, and say when a server is safe to stop", (t) => {
  const b = command(book(), "n3", "drain");
  const servers = serverStates(b, new Set(["n1", "n2", "n3"]), 1000, 1000);
  const rows = serverRows(servers, b, [
    { name: "A", replicas: 2, bytes: 10, peers: ["n1", "n2"], leader: "n1" },
    { name: "B", replicas: 1, bytes: 5, peers: ["n1"], leader: "n1" },
  ]);
  t.deepEqual(rows.map((r) => [r.name, r.state, r.bytes, r.replicas, r.leaders, r.safeToStop]), [
    ["n1", "up", 15, 2, 2, false],
    ["n2", "up", 10, 1, 0, false],
    ["n3", "drained", 0, 0, 0, true],
  ]);
});

test("the rebalance gauges show the status", async (t) => {
  const { exportRebalance, registry } = await import("../../src/metrics/index.ts");
  exportRebalance({ state: "moving", planned: 3, running: 1, done: 2, failed: 0, bytesLeft: 4096, etaSeconds: 7, servers: [{ name: "n1", bytes: 10, replicas: 2, leaders: 1 }] });
  const text = await registry.metrics();
  t.regex(text, /^shoal_rebalance_active 1$/m);
  t.regex(text, /^shoal_rebalance_moves\{state="planned"\} 3$/m);
  t.regex(text, /^shoal_rebalance_bytes_left 4096$/m);
  t.regex(text, /^shoal_rebalance_eta_seconds 7$/m);
  t.regex(text, /^shoal_server_replicas\{server="n1"\} 2$/m);
  t.regex(text, /^shoal_server_leaders\{server="n1"\} 1$/m);
  exportRebalance({ state: "idle", planned: 0, running: 0, done: 2, failed: 0, bytesLeft: 0, etaSeconds: null, servers: [] });
  const idle = await registry.metrics();
  t.regex(idle, /^shoal_rebalance_active 0$/m);
  t.regex(idle, /^shoal_rebalance_eta_seconds -1$/m);
  t.notRegex(idle, /shoal_server_replicas\{server="n1"\}/);
});

test("the rebalancer manages Shoal's streams only", async (t) => {
  const { isShoalStream } = await import("../../actors/rebalancer/index.ts");
  for (const s of ["OBJ_photos", "OBJ_logs_2026__2", "KV_shoal_buckets", "KV_shoal_plans", "SHOAL_EVENTS", "SHOAL_ALERTS"]) t.true(isShoalStream(s), s);
  for (const s of ["ORDERS", "KV_config", "KV_shoal_other", "SHOAL_X"]) t.false(isShoalStream(s), s);
});

test("a stream whose balance move landed on a server that takes no replicas gets no balance move for the hold; repair, drain and leader moves still go (seed 877643435's bounce)", (t) => {
  const balance = { kind: "replica" as const, stream: "KV_b", from: "n3", to: "n1", bytes: 376, reason: "balance" as const };
  const drain = { ...balance, from: "n4", reason: "drain" as const };
  const leader = { kind: "leader" as const, stream: "KV_b", from: "n3", to: "n1", bytes: 0 as const, reason: "leader" as const };
  const other = { ...balance, stream: "OBJ_x" };
  const up = new Set(["n1", "n2", "n3", "n5"]); // n4 is drained
  t.true(wentAstray(balance, "n4", up), "landed on the drained n4, planned n1");
  t.false(wentAstray(balance, "n1", up));
  t.false(wentAstray(balance, "n5", up), "landed on another live server: the next round corrects it, no hold");
  t.false(wentAstray(balance, "-", up), "no replacement placed: not astray");
  t.false(wentAstray(drain, "n3", up), "a drain may land anywhere but the drained server");
  const astray = new Map([["KV_b", 1000]]);
  t.deepEqual(holdAstray([balance, drain, leader, other], astray, 1000 + ASTRAY_HOLD_MS - 1), [drain, leader, other]);
  t.deepEqual(holdAstray([balance, drain, leader, other], astray, 1000 + ASTRAY_HOLD_MS), [balance, drain, leader, other], "after the hold it may balance again");
  t.deepEqual(holdAstray([balance], new Map(), 0), [balance]);
});
