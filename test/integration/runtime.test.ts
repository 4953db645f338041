import test from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { Kvm } from "@nats-io/kv";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { errorFromWire, ShoalError } from "../../src/errors/index.ts";
import { KV, actorPresenceKey, controlSubject, heartbeatWildcard } from "../../src/subjects/index.ts";
import { decodeHeartbeat, listPresence, startActors } from "../../src/runtime/index.ts";
import { buildConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { startServer, connectTo } from "../helpers/nats.ts";
import { captureLogger, ECHO_SUBJECT, FAST_RUNTIME, makeTestActor, runActor, SLOW_STARTED_SUBJECT } from "../helpers/actors.ts";
import { headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/nats-core";

async function call(nc: NatsConnection, op: string, body = ""): Promise<{ msg: Msg; error: ShoalError | undefined }> {
  const msg = await nc.request(`${ECHO_SUBJECT}.${op}`, body, { timeout: 3000 });
  return { msg, error: errorFromWire((h) => msg.headers?.get(h) || undefined, msg.string()) };
}

test("a handler that throws or rejects gets a typed error reply and the actor keeps serving", async (t) => {
  const srv = await startServer(t);
  const cap = captureLogger();
  await runActor(t, srv.url, makeTestActor(), { logger: cap.logger });
  const nc = await connectTo(t, srv.url);

  for (const op of ["throw", "reject"]) {
    const { msg, error } = await call(nc, op);
    t.truthy(error, `${op}: an error reply`);
    t.is(error?.code, "InternalError");
    t.is(msg.headers?.get("Nats-Service-Error-Code"), "500");
    // the internal message never reaches the client…
    t.false(msg.string().includes("hunter2") || msg.string().includes("boom"), msg.string());
    t.false((msg.headers?.get("Nats-Service-Error") ?? "").includes("secret"));
  }
  // …but is in the log, as { err }
  const logged = cap.lines().filter((l) => l["msg"] === "handler failed");
  t.is(logged.length, 2);
  t.regex(JSON.stringify(logged[0]?.["err"]), /hunter2/);

  // still alive and serving
  const { msg, error } = await call(nc, "echo", "still here");
  t.is(error, undefined);
  t.is(msg.json<{ echo: string }>().echo, "still here");
});

test("typed client errors keep their code, status and detail", async (t) => {
  const srv = await startServer(t);
  await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  const { msg, error } = await call(nc, "refuse");
  t.is(error?.code, "NoSuchKey");
  t.is(msg.headers?.get("Nats-Service-Error-Code"), "404");
  t.deepEqual(error?.detail, { key: "k" });
});

test("malformed JSON and unknown versions are refused with typed errors", async (t) => {
  const srv = await startServer(t);
  await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  t.is((await call(nc, "json", "{nope")).error?.code, "MalformedPayload");
  t.is((await call(nc, "json", "[1,2]")).error?.code, "MalformedPayload");
  t.is((await call(nc, "json", '{"v":2}')).error?.code, "UnsupportedVersion");
  t.deepEqual((await call(nc, "json", '{"v":1,"a":1}')).msg.json(), { v: 1, a: 1 });
  t.deepEqual((await call(nc, "json", "")).msg.json(), {});
});

test("a handler that returns nothing still answers", async (t) => {
  const srv = await startServer(t);
  await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  const { msg, error } = await call(nc, "silent");
  t.is(error, undefined);
  t.is(msg.data.length, 0);
});

test("the service is discoverable the way `nats micro` finds it", async (t) => {
  const srv = await startServer(t);
  const inst = await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  const ping = (await nc.request("$SRV.PING.shoal-tester", "", { timeout: 2000 })).json<{ name: string; id: string; metadata: Record<string, string> }>();
  t.is(ping.name, "shoal-tester");
  t.is(ping.metadata["instance"], inst.id);
  const info = (await nc.request("$SRV.INFO.shoal-tester", "", { timeout: 2000 })).json<{ endpoints: Array<{ name: string; queue_group: string }> }>();
  t.true(info.endpoints.some((e) => e.name === "echo" && e.queue_group === "shoal-tester"));
});

test("control subjects reach every instance", async (t) => {
  const srv = await startServer(t);
  const a = await runActor(t, srv.url);
  const b = await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  const inbox = nc.subscribe("_INBOX.ctl-test", { max: 2 });
  nc.publish(controlSubject("tester", "ping"), "", { reply: "_INBOX.ctl-test" });
  const ids = new Set<string>();
  for await (const m of inbox) ids.add(m.json<{ pong: string }>().pong);
  t.deepEqual([...ids].sort(), [a.id, b.id].sort());
});

test("two instances in one queue group share the requests", async (t) => {
  const srv = await startServer(t);
  const a = await runActor(t, srv.url);
  const b = await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  const seen = new Map<string, number>();
  for (let i = 0; i < 60; i++) {
    const id = (await call(nc, "echo", "x")).msg.json<{ id: string }>().id;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  t.deepEqual([...seen.keys()].sort(), [a.id, b.id].sort(), JSON.stringify([...seen]));
});

test("heartbeats are published and presence appears in KV; a graceful stop removes it", async (t) => {
  const srv = await startServer(t);
  const nc = await connectTo(t, srv.url);
  const sub = nc.subscribe(heartbeatWildcard("tester"), { max: 3 });
  const inst = await runActor(t, srv.url);
  const beats = [];
  for await (const m of sub) beats.push(decodeHeartbeat(m.data));
  t.true(beats.every((b) => b.kind === "tester" && b.id === inst.id && b.v === 1 && b.status === "running"));
  t.true(beats[2]!.now >= beats[0]!.now);

  const kv = await new Kvm(jetstream(nc)).open(KV.actors);
  const presence = await listPresence(await jetstreamManager(nc), kv);
  t.deepEqual(presence.byKind.get("tester")?.map((h) => h.id), [inst.id]);

  await inst.stop();
  t.is(await kv.get(actorPresenceKey("tester", inst.id)).then((e) => (e?.operation === "PUT" ? e : null)), null);
  t.is((await listPresence(await jetstreamManager(nc), kv)).live.length, 0);
});

test("presence expires when an actor dies without stopping", async (t) => {
  const srv = await startServer(t);
  const inst = await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  const kv = await new Kvm(jetstream(nc)).open(KV.actors);
  t.is((await listPresence(await jetstreamManager(nc), kv)).live.length, 1);
  // Simulate a crash: the connection vanishes without the graceful path.
  await inst.connection.close();
  const deadline = Date.now() + 5000;
  let entry = await kv.get(actorPresenceKey("tester", inst.id));
  while (entry && Date.now() < deadline) {
    await sleep(100);
    entry = await kv.get(actorPresenceKey("tester", inst.id));
  }
  t.is(entry, null, "the entry aged out of KV through max_age");
  t.is((await listPresence(await jetstreamManager(nc), kv)).live.length, 0);
});

test("drain: an in-flight request completes and is answered; later requests go elsewhere or get ShuttingDown", async (t) => {
  const srv = await startServer(t);
  const inst = await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  // stop once the handler is running (a fixed sleep lost the race under load: the request came after the stop began)
  const started = nc.subscribe(SLOW_STARTED_SUBJECT, { max: 1 });
  await nc.flush();
  const slow = call(nc, "slow", "600");
  for await (const _ of started) break;
  const stopping = inst.stop(3000);
  const { msg, error } = await slow;
  t.is(error, undefined);
  t.deepEqual(msg.json(), { slept: 600 });
  await stopping;
  // no instance left: no responders, not a hang
  await t.throwsAsync(() => nc.request(`${ECHO_SUBJECT}.echo`, "", { timeout: 1000 }), { message: /no responders|503/i });
});

test("stop returns by the deadline even when a handler hangs", async (t) => {
  const srv = await startServer(t);
  const inst = await runActor(t, srv.url);
  const nc = await connectTo(t, srv.url);
  void nc.request(`${ECHO_SUBJECT}.slow`, "20000", { timeout: 30000 }).catch(() => undefined);
  await sleep(100);
  const t0 = Date.now();
  await inst.stop(500);
  t.true(Date.now() - t0 < 3000, `stop took ${Date.now() - t0} ms`);
});

test("a loop that throws is restarted and the actor stays up", async (t) => {
  const srv = await startServer(t);
  let runs = 0;
  const def = makeTestActor("looper", {
    loops: [
      {
        name: "flaky",
        run: async () => {
          runs++;
          throw new Error("loop failure");
        },
      },
    ],
  });
  await runActor(t, srv.url, def);
  const nc = await connectTo(t, srv.url);
  await sleep(900);
  t.true(runs >= 2, `loop ran ${runs} times`);
  t.is((await nc.request(`${ECHO_SUBJECT}.echo`, "x", { timeout: 2000 })).json<{ echo: string }>().echo, "x");
});

test("startActors runs several kinds in one process, one connection each, and stops them together", async (t) => {
  const srv = await startServer(t);
  const running = await startActors([makeTestActor("one"), makeTestActor("two")], {
    nats: buildConfig({ nats: { servers: srv.url } }).nats,
    runtime: FAST_RUNTIME,
    logger: createLogger({ level: "silent" }),
  });
  t.teardown(() => running.stop(500));
  const [a, b] = running.instances;
  t.not(a!.connection, b!.connection);
  const nc = await connectTo(t, srv.url);
  const kv = await new Kvm(jetstream(nc)).open(KV.actors);
  t.deepEqual([...(await listPresence(await jetstreamManager(nc), kv)).byKind.keys()].sort(), ["one", "two"]);
  await running.stop();
  t.true(a!.connection.isClosed() && b!.connection.isClosed());
});

test("dispatch is total: a reply that cannot be encoded, or error text with CR/LF, still gets a typed answer", async (t) => {
  const srv = await startServer(t);
  const cap = captureLogger();
  await runActor(t, srv.url, makeTestActor(), { logger: cap.logger });
  const nc = await connectTo(t, srv.url);
  // the reply's own encoding fails: the request is not marked answered, so the error reply goes out
  for (const op of ["badheader", "bigint"]) {
    const { msg, error } = await call(nc, op);
    t.is(error?.code, "InternalError", op);
    t.is(msg.headers?.get("Shoal-Meta-Evil"), "", `${op}: no half-built reply`);
  }
  // error text quoting the request's CR/LF: escaped in the header, intact in the body
  const { msg, error } = await call(nc, "echoerr", "a\r\nInjected: yes");
  t.is(error?.code, "InvalidArgument");
  t.is(msg.headers?.get("Nats-Service-Error"), "bad a\\u000d\\u000aInjected: yes");
  t.is(msg.headers?.get("Injected"), "");
  t.is(msg.json<{ error: { message: string } }>().error.message, "bad a\r\nInjected: yes");
  // and the actor still serves
  t.is((await call(nc, "echo", "still here")).msg.json<{ echo: string }>().echo, "still here");
});

test("attempts of one call handled at once (same subject, request id, headers and payload) each answer with the first success among them; another payload under the id is its own call", async (t) => {
  const srv = await startServer(t);
  let runs = 0;
  const seen = new Set<string>();
  const actor = makeTestActor("sharer", {
    endpoints: [
      {
        name: "work",
        subject: `${ECHO_SUBJECT}.work`,
        handler: async (req) => {
          const run = ++runs;
          const body = new TextDecoder().decode(req.data);
          const firstOfSlow = body === "slow-first" && !seen.has(body);
          seen.add(body);
          await sleep(firstOfSlow ? 1500 : 600);
          if (body.startsWith("fail")) throw new ShoalError("ServiceUnavailable", `attempt ${run} failed`);
          return { body, run };
        },
      },
    ],
  });
  await runActor(t, srv.url, actor);
  const nc = await connectTo(t, srv.url);
  const ask = async (body: string, id: string, timeout: number) => {
    const h = natsHeaders();
    h.set("Shoal-Request-Id", id);
    const m = await nc.request(`${ECHO_SUBJECT}.work`, body, { timeout, headers: h });
    return { json: m.string() ? (JSON.parse(m.string()) as Record<string, unknown>) : {}, error: errorFromWire((n) => m.headers?.get(n) || undefined, m.string()) };
  };
  // the caller gives up after 300 ms and asks again: the first attempt's
  // answer (run 1, done first) is the retry's, though the retry runs too
  await t.throwsAsync(ask("a", "ReqIdAAAAAAAAAAAAAAAAA", 300));
  const again = await ask("a", "ReqIdAAAAAAAAAAAAAAAAA", 3000);
  t.deepEqual(again.json, { body: "a", run: 1 });
  // a first attempt slower than the retry does not hold the retry back
  await t.throwsAsync(ask("slow-first", "ReqIdDDDDDDDDDDDDDDDDDD", 100));
  const quick = await ask("slow-first", "ReqIdDDDDDDDDDDDDDDDDDD", 3000);
  t.is(quick.json["run"], runs, "the retry's own run answered");
  // the same id with other bytes is another call
  const [x, y] = await Promise.all([ask("b", "ReqIdBBBBBBBBBBBBBBBBBB", 3000), ask("c", "ReqIdBBBBBBBBBBBBBBBBBB", 3000)]);
  t.is(x.json["body"], "b");
  t.is(y.json["body"], "c");
  t.not(x.json["run"], y.json["run"]);
  // failures are not shared: each attempt answers with its own
  await t.throwsAsync(ask("fail", "ReqIdCCCCCCCCCCCCCCCCCC", 300));
  const failed = await ask("fail", "ReqIdCCCCCCCCCCCCCCCCCC", 3000);
  t.is(failed.error?.code, "ServiceUnavailable");
  t.is(failed.error?.message, `attempt ${runs} failed`);
});
