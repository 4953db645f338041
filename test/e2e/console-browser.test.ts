/// <reference lib="dom" />
/**
 * The console end to end in a real headless Chromium (Debian's `chromium`,
 * driven by playwright-core), against `shoal dev --servers 3` started as a
 * user would start it:
 *
 *   log in with a wrong key, then the right one → create a bucket (R3) →
 *   upload a 20 MiB file (in parts) and a folder of small files, watching
 *   the progress → browse into the folder → download the file and compare
 *   its bytes → make a share link and fetch it without cookies → an expired
 *   link is refused → delete objects and the bucket → SIGKILL one of the
 *   three nats-servers and see the cluster page show it down, with its alert.
 *
 * Screenshots of every page (1280×800, and a phone viewport) go to
 * test-artifacts/console/ (gitignored). Skips, with one line saying so, only
 * when no chromium binary is installed.
 */
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDir } from "../helpers/nats.ts";
import { signRequest } from "../../src/gateway/auth.ts";
import { withTimeout } from "../../src/runtime/backoff.ts";

const root = new URL("../../", import.meta.url).pathname;
const CHROMIUM = process.env["SHOAL_CHROMIUM"] ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const ARTIFACTS = join(root, "test-artifacts", "console");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Pids of the nats-servers whose config lives under `dir` (from /proc). */
function natsPids(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
    } catch {
      continue;
    }
    const conf = cmd[cmd.indexOf("-c") + 1];
    if (cmd.indexOf("-c") > 0 && conf?.startsWith(dir)) out.set(conf.split("/").at(-2)!, Number(p));
  }
  return out;
}

/** Pids of the processes whose command line names `path` (the browser's, by its profile dir). */
function pidsWith(path: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(path)) out.push(Number(p));
    } catch {
      // gone
    }
  }
  return out;
}

/** Polls `fn` every 200 ms until it returns something truthy; fails after `ms` (or at once when `fn` throws). */
async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const v = await fn();
    if (v) return v;
    await sleep(200);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

if (!CHROMIUM && process.env["CI"]) {
  // CI's test command installs chromium (scripts/prereqs.mjs): there, its absence is a failure, not a skip
  test("the console end to end in headless Chromium", (t) => t.fail("no chromium binary, though the test command installs Debian's chromium (or set SHOAL_CHROMIUM)"));
} else if (!CHROMIUM) {
  console.log("console-browser: skipped: no chromium binary (install Debian's chromium, or set SHOAL_CHROMIUM)");
  test.skip("the console end to end in headless Chromium", () => {});
} else {
  test("the console end to end in headless Chromium: login, buckets, uploads, browse, download, share links, delete, and a killed server on the cluster page", async (t) => {
    t.timeout(420_000);
    const { chromium } = await import("playwright-core");
    mkdirSync(ARTIFACTS, { recursive: true });
    const data = tempDir(t);
    const files = tempDir(t);

    // --- shoal dev --servers 3, as a user starts it (free ports; fast health checks)
    const child: ChildProcess = spawn(process.execPath, ["bin/shoal.js", "dev", "--servers", "3", "--nats-port", "0", "--s3-port", "0", "--console-port", "0", "--data", data], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SHOAL_HEALTH_INTERVAL_MS: "500", SHOAL_HEALTH_DEBOUNCE_MS: "1000", SHOAL_LOG_LEVEL: "warn" },
    });
    let out = "";
    child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    t.teardown(async () => {
      writeFileSync(join(ARTIFACTS, "shoal-dev.log"), out);
      // CI shows only the run's output: there, the log's tail is the cause of a failure
      if (!t.passed) console.error(`[console-browser] the last lines shoal dev printed:\n${out.split("\n").slice(-60).join("\n")}`);
      if (child.exitCode === null) {
        child.kill("SIGINT");
        await Promise.race([exited, sleep(20_000)]);
        child.kill("SIGKILL");
      }
      for (const pid of natsPids(data).values()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    });
    const consoleUrl = await until("the Console line", 120_000, () => child.exitCode === null && /^Console: (http:\/\/\S+)/m.exec(out)?.[1]);
    const s3Url = /^S3: (http:\/\/\S+)/m.exec(out)![1]!;
    const keys = /S3 access key (\S+) \/ secret key (\S+) /.exec(out)!;
    const [accessKey, secretKey] = [keys[1]!, keys[2]!];
    t.log(`console ${consoleUrl}, S3 ${s3Url}`);

    // --- the files to upload
    const big = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(join(files, "video.bin"), big);
    const folder = join(files, "notes");
    mkdirSync(join(folder, "deep"), { recursive: true });
    const small: Record<string, string> = { "notes/a.txt": "alpha\n", "notes/b.txt": "bravo\n", "notes/deep/c.txt": "charlie\n", "notes/d.md": "# delta\n" };
    for (const [k, v] of Object.entries(small)) writeFileSync(join(files, k), v);
    // a 1×1 PNG, for the image preview
    writeFileSync(join(files, "notes/pixel.png"), Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==", "base64"));

    // --- the browser
    const profile = tempDir(t, "shoal-test-chromium-");
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      acceptDownloads: true,
      viewport: { width: 1280, height: 800 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    // bounded: a browser that hangs does not hang the run (its processes are killed after 20 s)
    t.teardown(async () => {
      if ((await withTimeout(context.close().then(() => "closed"), 20_000)) !== "closed") {
        console.error("[console-browser] the browser did not close within 20 s; killing it");
        for (const pid of pidsWith(profile)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // gone
          }
        }
      }
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("dialog", (d) => void d.accept());
    // every answer the console gave the browser, to check that no secret is in one
    const answers: Array<Promise<string>> = [];
    page.on("response", (r) => {
      if (!r.url().startsWith(consoleUrl) || r.url().includes("/download") || r.url().includes("/api/events")) return;
      // bounded: a body the browser never got (an upload cancelled mid-way) would never resolve
      answers.push(Promise.race([r.text().then((b) => `${JSON.stringify(r.headers())}${b}`, () => ""), sleep(5000).then(() => "")]));
    });
    page.setDefaultTimeout(30_000);
    const shot = async (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

    // 1. log in: a wrong key, then the right one
    await page.goto(consoleUrl);
    await page.getByLabel("Access key").fill(accessKey);
    await page.getByLabel("Secret key").fill("not-the-secret");
    await page.getByRole("button", { name: "Log in" }).click();
    const refusal = page.getByRole("alert");
    await refusal.waitFor();
    t.regex(await refusal.innerText(), /access key or secret key is wrong[\s\S]*What to do/);
    await shot("01-login-refused");
    await page.getByLabel("Secret key").fill(secretKey);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Buckets" }).waitFor();
    const cookies = await context.cookies(consoleUrl);
    const session = cookies.find((c) => c.name === "shoal_console")!;
    t.true(session.httpOnly);
    t.is(session.sameSite, "Strict");
    t.false(await page.evaluate(() => document.cookie.includes("shoal_console")), "scripts cannot read the session cookie");

    // 2. create a bucket with 3 replicas
    await page.getByLabel("New bucket name").fill("gallery");
    await page.getByLabel("Replicas").selectOption("3");
    await page.getByRole("button", { name: "Create bucket" }).click();
    const row = page.getByRole("row", { name: /gallery/ });
    await row.waitFor();
    t.regex(await row.innerText(), /gallery\s+0\s+0 B\s+3/);
    await shot("02-buckets");

    // 3. upload a 20 MiB file (in parts) and a folder, watching progress
    await page.getByRole("link", { name: "gallery" }).click();
    await page.getByText("This folder is empty").waitFor();
    await page.evaluate(() => {
      // every value the progress bars take, per key
      const seen: Record<string, number[]> = ((window as unknown as { __progress: Record<string, number[]> }).__progress = {});
      new MutationObserver(() => {
        for (const li of document.querySelectorAll<HTMLElement>("li.upload")) {
          const v = Number(li.querySelector("progress")!.value);
          const k = li.dataset["key"]!;
          const l = (seen[k] ??= []);
          if (l.at(-1) !== v) l.push(v);
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["value", "class"] });
    });
    await page.getByLabel("Choose files to upload").setInputFiles(join(files, "video.bin"));
    await page.getByLabel("Choose a folder to upload").setInputFiles(folder);
    await page.locator("li.upload").first().waitFor();
    await shot("03-uploading");
    await until("every upload done", 120_000, async () => (await page.locator("li.upload.done").count()) === 6 || ((await page.locator("li.upload.failed").count()) > 0 ? Promise.reject(new Error(await page.locator("li.upload.failed").first().innerText())) : false));
    const progress = await page.evaluate(() => (window as unknown as { __progress: Record<string, number[]> }).__progress);
    const videoSteps = progress["video.bin"] ?? [];
    t.log(`video.bin progress values: ${videoSteps.length} (${videoSteps.slice(0, 6).join(", ")}…)`);
    t.is(videoSteps.at(-1), big.length, "the bar ends full");
    t.true(videoSteps.filter((v) => v > 0 && v < big.length).length >= 1, "the bar moved through values in between");
    t.deepEqual(Object.keys(progress).filter((k) => k.startsWith("notes/")).sort(), [...Object.keys(small), "notes/pixel.png"].sort());
    await page.getByRole("link", { name: /notes/ }).waitFor();
    await shot("04-objects");

    // cancel: a 48 MiB upload stopped midway leaves no object and no multipart upload behind
    writeFileSync(join(files, "cancel-me.bin"), Buffer.alloc(48 * 1024 * 1024, 7));
    await page.getByLabel("Choose files to upload").setInputFiles(join(files, "cancel-me.bin"));
    const cancelRow = page.locator('li.upload[data-key="cancel-me.bin"]');
    await until("the upload under way", 60_000, async () => Number(await cancelRow.locator("progress").getAttribute("value")) > 0);
    await cancelRow.getByRole("button", { name: "Cancel upload of cancel-me.bin" }).click();
    await until("shown cancelled", 10_000, async () => (await cancelRow.getAttribute("class"))?.includes("cancelled"));
    const s3 = async (rawPath: string, rawQuery = "") => {
      const host = new URL(s3Url).host;
      const { host: _h, ...headers } = signRequest({ method: "GET", rawPath, rawQuery, headers: { host } }, { accessKey, secretKey, region: "us-east-1" }) as Record<string, string>;
      const r = await fetch(`${s3Url}${rawPath}${rawQuery ? `?${rawQuery}` : ""}`, { headers });
      return { status: r.status, text: await r.text() };
    };
    await until("the multipart upload aborted", 20_000, async () => {
      const r = await s3("/gallery", "uploads=");
      t.is(r.status, 200, r.text);
      return r.text.includes("<ListMultipartUploadsResult") && !r.text.includes("<Upload>");
    });
    t.is((await s3("/gallery/cancel-me.bin")).status, 404, "no object left by a cancelled upload");

    // 4. browse into the folder (and deeper), with breadcrumbs
    await page.getByRole("link", { name: /notes/ }).click();
    await page.getByRole("button", { name: "a.txt" }).waitFor();
    t.is(await page.getByRole("navigation", { name: "Breadcrumbs" }).innerText().then((s) => s.replace(/\s+/g, "")), "Buckets/gallery/notes");
    await page.getByRole("button", { name: "pixel.png" }).click();
    const img = page.getByRole("img", { name: "Preview of pixel.png" });
    await img.waitFor();
    await until("the image preview loaded", 15_000, async () => (await img.evaluate((e) => (e as HTMLImageElement).naturalWidth)) === 1);
    t.regex(await page.getByRole("complementary", { name: "Details of pixel.png" }).innerText(), /Content type\s+image\/png/);
    await page.getByRole("link", { name: /deep/ }).click();
    await page.getByRole("button", { name: "c.txt" }).click();
    const preview = page.getByLabel("Preview of c.txt");
    await preview.waitFor();
    t.is((await preview.innerText()).trim(), "charlie");
    await shot("05-folder-details");
    await page.getByRole("navigation", { name: "Breadcrumbs" }).getByRole("link", { name: "gallery" }).click();

    // search by prefix, and sort by size
    await page.getByLabel("Search by prefix").fill("vid");
    // a listing that answers while something is typed re-renders the page: the typing must survive it
    await Promise.all([page.waitForResponse((r) => r.url().includes("/objects")), page.getByRole("button", { name: "Refresh" }).click()]);
    await page.waitForTimeout(300); // the answer's body read and rendered (no element marks that render)
    t.is(await page.getByLabel("Search by prefix").inputValue(), "vid", "a render keeps what is typed in the search box");
    await page.getByLabel("Search by prefix").press("Enter");
    await until("only video.bin listed", 15_000, async () => (await page.getByRole("link", { name: /notes/ }).count()) === 0 && (await page.getByRole("button", { name: "video.bin" }).count()) === 1);
    await page.getByLabel("Search by prefix").fill("");
    await page.getByLabel("Search by prefix").press("Enter");
    await page.getByRole("link", { name: /notes/ }).waitFor();
    await page.getByRole("button", { name: /^Size/ }).click();
    t.is(await page.getByRole("columnheader", { name: /Size/ }).getAttribute("aria-sort"), "ascending");

    // 5. download the big file and compare its bytes
    await page.getByRole("button", { name: "video.bin" }).click();
    const details = page.getByRole("complementary", { name: "Details of video.bin" });
    await details.getByText("20971520 bytes").waitFor();
    t.regex(await details.innerText(), /ETag\s+[0-9a-f]{32}-3/);
    const [download] = await Promise.all([page.waitForEvent("download"), details.getByRole("link", { name: "Download" }).click()]);
    const saved = join(files, "downloaded.bin");
    await download.saveAs(saved);
    t.is(sha(readFileSync(saved)), sha(big), "downloaded bytes equal the uploaded file");

    // 6. a share link, fetched without any cookie
    await details.getByLabel("Share link valid for").selectOption(String(3600));
    await details.getByRole("button", { name: "Create share link" }).click();
    const link = await details.getByLabel(/Share link \(anyone/).inputValue();
    t.true(link.startsWith(`${s3Url}/gallery/video.bin?`), link);
    await details.getByRole("button", { name: "Copy link" }).click();
    await shot("06-share");
    const shared = await fetch(link);
    t.is(shared.status, 200);
    t.is(sha(new Uint8Array(await shared.arrayBuffer())), sha(big), "the link serves the file to a client with no session");

    // 7. an expired link is refused (made through the same API with a 1 s life)
    const shortLink = await page.evaluate(async () => {
      const { csrf } = (await (await fetch("/api/session")).json()) as { csrf: string };
      const r = await fetch("/api/buckets/gallery/share", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify({ key: "video.bin", expiresIn: 1 }) });
      return ((await r.json()) as { url: string }).url;
    });
    const refusedStatus = await until("the short link expires", 15_000, async () => {
      const r = await fetch(shortLink);
      await r.body?.cancel();
      return r.status === 403 ? r.status : false;
    });
    t.is(refusedStatus, 403);

    // 8. delete: several objects, then the bucket with its typed confirmation
    await page.goto(`${consoleUrl}/#/b/gallery/notes/`);
    await page.getByLabel("Select a.txt").check();
    await page.getByLabel("Select b.txt").check();
    await page.getByRole("button", { name: "Delete selected (2)" }).click();
    await until("a.txt gone", 15_000, async () => (await page.getByRole("button", { name: "a.txt" }).count()) === 0);
    t.is(await page.getByRole("button", { name: "d.md" }).count(), 1);
    await page.getByRole("link", { name: "Buckets" }).first().click();
    await page.getByRole("button", { name: "Delete bucket gallery" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete bucket gallery" });
    const confirmButton = dialog.getByRole("button", { name: "Delete bucket" });
    t.true(await confirmButton.isDisabled(), "not without the typed name");
    await dialog.getByLabel(/Type gallery to confirm/).fill("gallery");
    await shot("07-delete-bucket");
    await confirmButton.click();
    await page.getByText("No buckets yet").waitFor();

    // phone-sized views of the same pages
    await page.getByLabel("New bucket name").fill("phone");
    await page.getByRole("button", { name: "Create bucket" }).click();
    await page.getByRole("link", { name: "phone" }).waitFor();
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("08-phone-buckets");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    t.true(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
    await page.getByRole("link", { name: "phone" }).click();
    await page.getByText("This folder is empty").waitFor();
    await shot("09-phone-browser");
    await page.setViewportSize({ width: 1280, height: 800 });

    // keyboard: Tab reaches the main navigation and Enter follows it
    await page.goto(`${consoleUrl}/#/buckets`);
    await page.reload();
    await page.getByRole("heading", { name: "Buckets" }).waitFor();
    let reached = false;
    for (let i = 0; i < 12 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.textContent === "Cluster");
    }
    t.true(reached, "Cluster link reachable with Tab");
    await page.keyboard.press("Enter");

    // 9. the cluster page: three servers up; SIGKILL one; it shows down with its alert
    await page.getByRole("heading", { name: "Servers" }).waitFor();
    const servers = page.getByRole("table", { name: "Servers" });
    await until("three servers up", 60_000, async () => (await servers.getByText("up", { exact: true }).count()) === 3);
    await page.getByText("(live)").waitFor();
    // the live tail shows a change made now
    await page.evaluate(async () => {
      const { csrf } = (await (await fetch("/api/session")).json()) as { csrf: string };
      await fetch("/api/buckets/phone/object?key=hello.txt", { method: "PUT", headers: { "x-csrf-token": csrf, "content-type": "text/plain" }, body: "hello" });
    });
    await page.locator("ol.events li", { hasText: "phone/hello.txt" }).waitFor();
    await shot("10-cluster");
    const pids = natsPids(data);
    t.is(pids.size, 3, `nats-servers found: ${[...pids.keys()].join(", ")}`);
    const victim = "shoal-dev-3";
    process.kill(pids.get(victim)!, "SIGKILL");
    const t0 = Date.now();
    const clusterNow = () => page.evaluate(async () => (await fetch("/api/cluster")).text());
    await until(`${victim} shown DOWN`, 60_000, async () => (await page.locator(`tr[data-server="${victim}"]`).innerText().catch(() => "")).includes("DOWN")).catch(async (e: Error) => {
      await shot("fail-cluster");
      t.log(`/api/cluster now: ${await clusterNow().catch((x: Error) => x.message)}`);
      throw e;
    });
    const downIn = Date.now() - t0;
    const alert = page.locator("ul.alerts li", { hasText: "server-down" });
    await until("server-down alert shown", 60_000, async () => (await alert.count()) > 0);
    t.log(`shown down after ${downIn} ms, alert after ${Date.now() - t0} ms`);
    t.regex(await alert.innerText(), new RegExp(victim));
    t.regex(await page.getByRole("heading", { name: /Cluster/ }).innerText(), /not healthy/);
    await shot("11-cluster-server-down");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("12-phone-cluster");
    t.true(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth) <= 1, "the cluster page fits a phone");

    t.deepEqual(pageErrors, [], "no script errors in the page");
    const bodies = await Promise.all(answers);
    t.true(bodies.length > 20);
    t.false(bodies.some((b) => b.includes(secretKey)), "no answer to the browser holds the secret key");
    t.false(out.split("\n").some((l) => l.startsWith("{") && l.includes(secretKey)), "no log line holds the secret key");
    const consoleErrors = out.split("\n").filter((l) => l.startsWith("{") && l.includes('"part":"console"') && /"level":(50|60)/.test(l));
    t.deepEqual(consoleErrors, [], "the console logged no internal error");
  });
}
