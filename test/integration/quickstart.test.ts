/**
 * Keeps the README's Quickstart true: runs its first command, exactly as
 * written, in a fresh copy of the repository, waits for `shoal dev` to print
 * its endpoints, checks that NATS/JetStream answers, then stops it with
 * Ctrl-C (SIGINT to its process group) and checks everything exited.
 */
import test from "ava";
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connectTo, tempDir } from "../helpers/nats.ts";
import { isDebianLike, lookupNatsServer } from "../../src/engine/binary.ts";
import { MIN_VERSION, parseVersion, versionAtLeast } from "../../src/engine/version.ts";

const root = new URL("../../", import.meta.url).pathname;

export function quickstartCommands(): string[] {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("Quickstart"));
  const block = section && /```sh\n([\s\S]*?)```/.exec(section);
  if (!block?.[1]) throw new Error("README has no ```sh block under ## Quickstart");
  return block[1].split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}

test("the README Quickstart has exactly two commands: start, then test", (t) => {
  const cmds = quickstartCommands();
  t.is(cmds.length, 2);
  t.regex(cmds[0]!, /npm start/);
  t.is(cmds[1], "npm test");
});

test("the Quickstart's first command brings up shoal dev, which answers and stops on Ctrl-C", async (t) => {
  const [start] = quickstartCommands();
  // A fresh copy of the tracked files (what a clone has), so `npm ci` does not
  // disturb the checkout the suite runs from.
  const dir = join(tempDir(t), "shoal");
  mkdirSync(dir);
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard"], { cwd: root, encoding: "utf8" }).split("\n").filter(Boolean);
  for (const f of files) if (existsSync(join(root, f))) cpSync(join(root, f), join(dir, f), { recursive: true });

  // Where Shoal may install (Debian/Ubuntu as root), start as a fresh machine
  // would: no SHOAL_NATS_SERVER and an empty Shoal cache dir, so `npm start`
  // must find a new enough nats-server or install one itself.
  const env: NodeJS.ProcessEnv = { ...process.env };
  const fresh = process.platform === "linux" && process.getuid?.() === 0 && isDebianLike();
  if (fresh) {
    delete env["SHOAL_NATS_SERVER"];
    env["XDG_CACHE_HOME"] = join(tempDir(t), "cache");
  }
  const child = spawn("bash", ["-c", start!], {
    cwd: dir,
    detached: true, // its own process group, like a terminal's foreground job
    stdio: ["ignore", "pipe", "pipe"],
    // Port 0: free ports picked by the OS, never the default ones; the command itself stays as written.
    env: { ...env, SHOAL_NATS_PORT: "0", SHOAL_S3_PORT: "0", SHOAL_CONSOLE_PORT: "0", npm_config_prefer_offline: "true" },
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  t.teardown(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  });

  const deadline = Date.now() + 180_000;
  let url: string | undefined;
  // the whole banner: its lines may arrive in more than one chunk (CI saw
  // the NATS line before the Credentials line)
  const banner = () => /^Credentials: /m.test(out) && (out.match(/^ {2}\$ /gm) ?? []).length >= 3;
  while (!(url && banner()) && Date.now() < deadline && child.exitCode === null) {
    url = /^NATS: (nats:\/\/\S+)$/m.exec(out)?.[1];
    if (!(url && banner())) await sleep(100);
  }
  t.truthy(url, `no "NATS: nats://…" line; output:\n${out}`);
  t.regex(out, /^Credentials: /m);
  t.true((out.match(/^ {2}\$ /gm) ?? []).length >= 3, "three example commands");

  const nc = await connectTo(t, url!);
  // the server it runs is new enough (and on a fresh machine it was found on PATH or installed just now)
  t.true(versionAtLeast(parseVersion(nc.info?.version ?? "")!, MIN_VERSION), nc.info?.version);
  if (fresh && !lookupNatsServer({ PATH: env["PATH"], XDG_CACHE_HOME: env["XDG_CACHE_HOME"] }).found) t.regex(out, /installed nats-server \d+\.\d+\.\d+/, out);
  const jsm = await jetstreamManager(nc);
  t.is(typeof (await jsm.getAccountInfo()).limits.max_storage, "number");
  await nc.close();

  // the S3 gateway answers: anonymous → AccessDenied; signed with the printed key pair → a bucket list
  const s3 = /^S3: (http:\/\/\S+)$/m.exec(out)?.[1];
  t.truthy(s3, `no "S3: http://…" line; output:\n${out}`);
  const anon = await fetch(`${s3}/`);
  t.is(anon.status, 403);
  t.regex(await anon.text(), /<Code>AccessDenied<\/Code>/);
  const keys = /S3 access key (\S+) \/ secret key (\S+) /.exec(out);
  t.truthy(keys, "the S3 credentials are printed");
  const { signRequest } = await import("../../src/gateway/auth.ts");
  const host = new URL(s3!).host;
  const signed = signRequest({ method: "GET", rawPath: "/", rawQuery: "", headers: { host } }, { accessKey: keys![1]!, secretKey: keys![2]!, region: "us-east-1" });
  const { host: _h, ...headers } = signed as Record<string, string>;
  const list = await fetch(`${s3}/`, { headers });
  t.is(list.status, 200);
  t.regex(await list.text(), /<ListAllMyBucketsResult/);

  // the console answers, and the printed key pair logs in
  const web = /^Console: (http:\/\/\S+)/m.exec(out)?.[1];
  t.truthy(web, `no "Console: http://…" line; output:\n${out}`);
  t.regex(await (await fetch(`${web}/`)).text(), /<title>Shoal console<\/title>/);
  const login = await fetch(`${web}/api/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ accessKey: keys![1], secretKey: keys![2] }) });
  t.is(login.status, 200);
  t.regex(login.headers.get("set-cookie") ?? "", /^shoal_console=.+; HttpOnly; SameSite=Strict/);

  process.kill(-child.pid!, "SIGINT");
  const code = await Promise.race([exited, sleep(30_000).then(() => "hung" as const)]);
  t.not(code, "hung", "stopped within 30 s of Ctrl-C");
  // npm and bash re-raise SIGINT (exit status 130 / signal), as in a terminal;
  // what matters is that shoal itself drained and stopped cleanly.
  t.regex(out, /^shoal dev: stopped$/m, out);
  t.notRegex(out, /drain deadline passed|stop failed/);
  // the nats-server it started is gone (nothing listens on its port), and its data was kept
  const port = Number(new URL(url!).port);
  t.false(await listening(port), `something still listens on ${port}`);
  t.true(existsSync(join(dir, ".shoal/data/nats/jetstream")));
});

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host: "127.0.0.1", port });
    sock.once("connect", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });
}

interface Prereqs {
  ensurePrereqs(o?: { log?: (l: string) => void; install?: boolean; needs?: Array<[string, () => boolean]>; engine?: (log: (l: string) => void) => string | undefined }): string | undefined;
  APT_NEEDS: Array<[string, () => boolean]>;
}
const prereqs = () => import(join(root, "scripts/prereqs.mjs")) as Promise<Prereqs>;

test("npm test's prerequisites: what cannot be installed is named in one line; nothing missing is nothing said", async (t) => {
  const { ensurePrereqs, APT_NEEDS } = await prereqs();
  t.deepEqual(APT_NEEDS.map(([p]) => p), ["awscli", "s3cmd", "rclone", "curl", "python3-boto3", "python3-prometheus-client", "chromium"]);
  const quiet = () => undefined;
  const needs: Array<[string, () => boolean]> = [["pkg-a", () => false], ["curl", () => true], ["pkg-b", () => false]];
  const line = ensurePrereqs({ log: quiet, install: false, needs, engine: () => undefined });
  t.is(line, "test: missing what the tests need; install it: apt-get install -y pkg-a pkg-b (as root)");
  const both = ensurePrereqs({ log: quiet, install: false, needs, engine: () => "nats-server: not found — run `npx shoal setup` as root" });
  t.false(both!.includes("\n"));
  t.regex(both!, /nats-server: not found.*; apt-get install -y pkg-a pkg-b/);
  t.is(ensurePrereqs({ log: quiet, install: false, needs: [["curl", () => true]], engine: () => undefined }), undefined);
});

test("npm test stops before any test with one line when a prerequisite is missing, and still ends with the summary line", (t) => {
  // SHOAL_NATS_SERVER names no binary (authoritative, so nothing else is used); installing is off
  const r = spawnSync(process.execPath, [join(root, "scripts/test.mjs")], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, SHOAL_NATS_SERVER: "/nonexistent/nats-server", SHOAL_PREREQS_NO_INSTALL: "1" },
  });
  t.is(r.status, 1, r.stdout + r.stderr);
  const errLines = r.stderr.trim().split("\n");
  t.is(errLines.length, 1, r.stderr);
  t.regex(errLines[0]!, /^test: missing what the tests need; install it: nats-server: SHOAL_NATS_SERVER=\/nonexistent\/nats-server is not an executable nats-server\./);
  t.is(r.stdout.trim().split("\n").at(-1), "0 passed, 1 failed");
  t.notRegex(r.stdout, /✔|✘/, "no test ran");
});
