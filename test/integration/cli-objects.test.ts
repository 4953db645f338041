import test from "ava";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startShoal } from "../helpers/actors.ts";
import { tempDir } from "../helpers/nats.ts";

const root = new URL("../../", import.meta.url).pathname;

test("shoal mb/put/ls/stat/get/cp/rm/rb round trip, with --json and not-found exit codes", async (t) => {
  const { url } = await startShoal(t);
  // Async spawn: the storage actor runs in this process and must keep serving.
  const run = (args: string[], input?: Buffer) =>
    new Promise<{ status: number | null; stdout: Buffer; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["bin/shoal.js", ...args, "--nats", url], { cwd: root, timeout: 30_000 });
      const out: Buffer[] = [];
      let err = "";
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      child.stdin.end(input ?? Buffer.alloc(0));
      child.on("close", (status) => resolve({ status, stdout: Buffer.concat(out), stderr: err }));
    });
  const dir = tempDir(t);
  const file = join(dir, "in.bin");
  const body = randomBytes(3 * 1024 * 1024 + 5);
  writeFileSync(file, body);

  const mb = await run(["mb", "cli-bucket"]);
  t.is(mb.status, 0, mb.stderr);
  const put = await run(["put", file, "cli-bucket/dir/in.bin", "--json"]);
  t.is(put.status, 0, put.stderr);
  t.is(JSON.parse(put.stdout.toString()).size, body.length);
  t.is((await run(["put", "-", "cli-bucket/stdin.txt"], Buffer.from("from stdin"))).status, 0);
  const fast = await run(["put", file, "cli-bucket/fast.bin", "--etag", "sha256", "--json"]);
  t.is(fast.status, 0, fast.stderr);
  t.is(JSON.parse(fast.stdout.toString()).etag, `${createHash("sha256").update(body).digest().subarray(0, 16).toString("hex")}-1`);
  t.is((await run(["put", file, "cli-bucket/x", "--etag", "crc"])).status, 2, "usage error");
  t.is((await run(["rm", "cli-bucket/fast.bin"])).status, 0);

  const ls = await run(["ls", "cli-bucket", "--json"]);
  t.deepEqual(JSON.parse(ls.stdout.toString()).map((e: { key?: string; prefix?: string }) => e.key ?? e.prefix), ["dir/", "stdin.txt"]);
  const lsr = await run(["ls", "cli-bucket/dir/", "-r"]);
  t.regex(lsr.stdout.toString(), /dir\/in\.bin/);

  const out = join(dir, "out.bin");
  t.is((await run(["get", "cli-bucket/dir/in.bin", out])).status, 0);
  t.true(readFileSync(out).equals(body));
  const ranged = await run(["get", "cli-bucket/dir/in.bin", "-", "--range", "10-19"]);
  t.true(ranged.stdout.equals(body.subarray(10, 20)));
  t.is((await run(["get", "cli-bucket/stdin.txt"])).stdout.toString(), "from stdin");

  t.is((await run(["cp", "cli-bucket/stdin.txt", "cli-bucket/copy.txt"])).status, 0);
  const stat = await run(["stat", "cli-bucket/copy.txt", "--json"]);
  t.is(JSON.parse(stat.stdout.toString()).size, 10);

  const missing = await run(["get", "cli-bucket/nope"]);
  t.is(missing.status, 3);
  t.regex(missing.stderr, /key does not exist/);
  t.is((await run(["stat", "no-such-bucket"])).status, 3);
  t.is((await run(["rb", "cli-bucket"])).status, 1, "not empty");
  t.is((await run(["rm", "cli-bucket/copy.txt", "cli-bucket/stdin.txt", "cli-bucket/dir/in.bin"])).status, 0);
  t.is((await run(["rb", "cli-bucket"])).status, 0);
  t.is((await run(["put", file])).status, 2, "usage error");
});

test("shoal events tails object-change events (--from all, --prefix, --count, --json); bad flags are usage errors", async (t) => {
  const { url, client } = await startShoal(t);
  const { runActor } = await import("../helpers/actors.ts");
  const { replicator } = await import("../../actors/replicator/index.ts");
  await runActor(t, url, replicator);
  await client.createBucket("cli-events");
  await client.put("cli-events", "logs/1", "a");
  await client.put("cli-events", "other", "b");
  await client.delete("cli-events", "logs/1");
  const run = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["bin/shoal.js", ...args, "--nats", url], { cwd: root, timeout: 30_000 });
      let out = "";
      let err = "";
      child.stdout.on("data", (c: Buffer) => (out += c.toString()));
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      child.on("close", (status) => resolve({ status, stdout: out, stderr: err }));
    });
  const r = await run(["events", "cli-events", "--from", "all", "--prefix", "logs/", "--count", "2", "--json"]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split("\n").map((l) => JSON.parse(l).eventName), ["s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete"]);
  const plain = await run(["events", "--from", "all", "--count", "1"]);
  t.regex(plain.stdout, /^\S+Z s3:ObjectCreated:Put cli-events\/logs\/1 1 [0-9a-f]{32}\n$/);
  t.is((await run(["events", "--from", "yesterday-ish"])).status, 2);
  const bad = await run(["events", "Bad_Bucket"]);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /Invalid bucket name/);
});

test("shoal replicate add/ls/status/scrub/rm", async (t) => {
  const { url, client } = await startShoal(t);
  const { runActor } = await import("../helpers/actors.ts");
  const { replicator } = await import("../../actors/replicator/index.ts");
  await runActor(t, url, replicator);
  await client.createBucket("cli-rsrc");
  await client.createBucket("cli-rdst");
  await client.put("cli-rsrc", "x", "1");
  const run = (args: string[]) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ["bin/shoal.js", ...args, "--nats", url], { cwd: root, timeout: 30_000 });
      let out = "";
      let err = "";
      child.stdout.on("data", (c: Buffer) => (out += c.toString()));
      child.stderr.on("data", (c: Buffer) => (err += c.toString()));
      child.on("close", (status) => resolve({ status, stdout: out, stderr: err }));
    });
  const add = await run(["replicate", "add", "cli-rsrc", "cli-rdst", "--json"]);
  t.is(add.status, 0, add.stderr);
  const id = JSON.parse(add.stdout).id as string;
  t.regex((await run(["replicate", "ls"])).stdout, new RegExp(`${id}\\s+cli-rsrc -> cli-rdst`));
  for (let i = 0; i < 50 && !(await client.head("cli-rdst", "x").catch(() => null)); i++) await new Promise((r) => setTimeout(r, 100));
  const st = await run(["replicate", "status", "--json"]);
  t.is(JSON.parse(st.stdout)[0].behind, 0, st.stdout);
  t.regex((await run(["replicate", "scrub", id])).stdout, /checked 1, same 1, copied 0/);
  t.is((await run(["replicate", "rm", id])).status, 0);
  t.is((await run(["replicate", "rm", id])).status, 3);
  t.is((await run(["replicate", "frobnicate"])).status, 2);
});
