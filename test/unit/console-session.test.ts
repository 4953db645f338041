import test from "ava";
import { LoginThrottle, MAX_SESSIONS, SessionStore, readCookie, safeEqual, sessionCookie } from "../../src/console/session.ts";

test("a session ends after its idle time, restarted by use, and after its lifetime however busy", (t) => {
  let now = 1_000_000;
  const s = new SessionStore({ sessionTtlMs: 10_000, idleTtlMs: 3000 }, () => now);
  const a = s.create("KEY");
  t.regex(a.id, /^[A-Za-z0-9_-]{43}$/);
  t.regex(a.csrf, /^[A-Za-z0-9_-]{43}$/);
  t.not(a.id, a.csrf);
  now += 2999;
  t.is(s.touch(a.id)?.accessKey, "KEY");
  now += 2999;
  t.truthy(s.touch(a.id));
  t.is(s.expiresAt(a), now + 3000);
  now += 3000;
  t.is(s.touch(a.id), undefined, "idle too long");
  t.is(s.size, 0, "an expired session is dropped");
  const b = s.create("KEY");
  for (let i = 0; i < 4; i++) {
    now += 2000;
    t.truthy(s.touch(b.id));
  }
  now += 2000;
  t.is(s.touch(b.id), undefined, "10 s after login");
  t.is(s.touch(undefined), undefined);
  t.is(s.touch("made-up"), undefined);
});

test("logout deletes a session; the store keeps at most MAX_SESSIONS, dropping the oldest", (t) => {
  const s = new SessionStore({ sessionTtlMs: 1e9, idleTtlMs: 1e9 });
  const first = s.create("K");
  t.true(s.delete(first.id));
  t.is(s.touch(first.id), undefined);
  const oldest = s.create("K");
  for (let i = 0; i < MAX_SESSIONS; i++) s.create("K");
  t.is(s.size, MAX_SESSIONS);
  t.is(s.touch(oldest.id), undefined);
});

test("the login throttle waits from the third attempt after failures, doubling up to the cap; success and time forget", (t) => {
  let now = 0;
  const th = new LoginThrottle(() => now, { freeFailures: 2, baseDelayMs: 500, maxDelayMs: 8000, forgetMs: 60_000, maxTracked: 3 });
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    delays.push(th.delayFor("ip"));
    th.failed("ip");
  }
  t.deepEqual(delays, [0, 0, 500, 1000, 2000, 4000, 8000]);
  t.is(th.delayFor("other"), 0, "per client");
  th.succeeded("ip");
  t.is(th.delayFor("ip"), 0);
  th.failed("ip");
  th.failed("ip");
  now += 60_001;
  t.is(th.delayFor("ip"), 0, "forgotten after a quiet spell");
  for (const c of ["a", "b", "c", "d"]) th.failed(c);
  t.is(th.delayFor("d"), 0);
});

test("the session cookie is HttpOnly and SameSite=Strict, Secure only under TLS; removal has Max-Age=0", (t) => {
  t.is(sessionCookie("c", "v", { maxAgeS: 3600.7, secure: false }), "c=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict");
  t.is(sessionCookie("c", "v", { maxAgeS: 10, secure: true }), "c=v; Path=/; Max-Age=10; HttpOnly; SameSite=Strict; Secure");
  t.is(sessionCookie("c", "", { maxAgeS: -5, secure: false }), "c=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
  t.is(readCookie("a=1; shoal_console=xyz; b=2", "shoal_console"), "xyz");
  t.is(readCookie("shoal_consolex=1", "shoal_console"), undefined);
  t.is(readCookie(undefined, "x"), undefined);
  t.true(safeEqual("abc", "abc"));
  t.false(safeEqual("abc", "abd"));
  t.false(safeEqual("abc", "abcd"));
});
