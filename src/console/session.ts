/**
 * Console sessions and login throttling: plain data structures with an
 * injected clock, no I/O, so the rules are unit-tested without a server.
 *
 * - A session is a random 256-bit id (the cookie) → the access key it logged
 *   in with and a CSRF token. The secret key never enters a session: the
 *   server looks it up in the gateway's credentials when it needs to sign.
 * - A session ends `sessionTtlMs` after login, or `idleTtlMs` after its last
 *   request, or at logout. Ids are compared as map keys (never printed).
 * - Failed logins are counted per client address; after two failures in a
 *   row each further attempt (right or wrong) waits longer before it is even
 *   checked: 0.5 s, 1 s, 2 s … up to 8 s. A success clears the count; counts
 *   are forgotten 15 minutes after the last failure.
 */
import { randomBytes, timingSafeEqual, createHash } from "node:crypto";

export interface Session {
  readonly id: string;
  readonly accessKey: string;
  readonly csrf: string;
  readonly created: number;
  lastSeen: number;
}

export interface SessionLimits {
  sessionTtlMs: number;
  idleTtlMs: number;
}

/** The most sessions kept at once; the oldest goes first when full. */
export const MAX_SESSIONS = 10_000;

const token = () => randomBytes(32).toString("base64url");

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  create(accessKey: string): Session {
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const t = this.now();
    const s: Session = { id: token(), accessKey, csrf: token(), created: t, lastSeen: t };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session with this id (its idle timer restarted), or undefined. */
  touch(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (this.expired(s, t)) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = t;
    return s;
  }

  /** When a session ends if nothing else happens. */
  expiresAt(s: Session): number {
    return Math.min(s.created + this.limits.sessionTtlMs, s.lastSeen + this.limits.idleTtlMs);
  }

  delete(id: string): boolean {
    return this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private expired(s: Session, t: number): boolean {
    return t >= this.expiresAt(s);
  }

  private sweep(): void {
    const t = this.now();
    for (const [id, s] of this.sessions) if (this.expired(s, t)) this.sessions.delete(id);
  }
}

/** Constant-time string equality (via digests, so lengths leak nothing either). */
export function safeEqual(a: string, b: string): boolean {
  const h = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

export const THROTTLE = { freeFailures: 2, baseDelayMs: 500, maxDelayMs: 8000, forgetMs: 15 * 60_000, maxTracked: 10_000 } as const;

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly o: { freeFailures: number; baseDelayMs: number; maxDelayMs: number; forgetMs: number; maxTracked: number } = THROTTLE,
  ) {}

  /** How long the next attempt from `client` waits before it is checked. */
  delayFor(client: string): number {
    const f = this.failures.get(client);
    if (!f) return 0;
    if (this.now() - f.last > this.o.forgetMs) {
      this.failures.delete(client);
      return 0;
    }
    const over = f.count - this.o.freeFailures;
    return over < 0 ? 0 : Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(over, 20));
  }

  failed(client: string): void {
    const f = this.failures.get(client);
    if (!f && this.failures.size >= this.o.maxTracked) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(client, { count: (f?.count ?? 0) + 1, last: this.now() });
  }

  succeeded(client: string): void {
    this.failures.delete(client);
  }
}

/** The Set-Cookie value of a session (or of its removal, with `maxAgeS` 0). */
export function sessionCookie(name: string, value: string, o: { maxAgeS: number; secure: boolean }): string {
  return [`${name}=${value}`, "Path=/", `Max-Age=${Math.max(0, Math.floor(o.maxAgeS))}`, "HttpOnly", "SameSite=Strict", ...(o.secure ? ["Secure"] : [])].join("; ");
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}
