/**
 * Lifecycle expiration: rules set through the gateway with the AWS SDK v3,
 * applied by src/store/lifecycle.ts with an injected clock, and by the
 * replicator on request (`shoal.ctl.replicator.lifecycle`).
 */
import test from "ava";
import { S3Client, PutBucketLifecycleConfigurationCommand, CreateMultipartUploadCommand } from "@aws-sdk/client-s3";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";
import { runActor } from "../helpers/actors.ts";
import { createLogger } from "../../src/log.ts";
import { BucketSettings } from "../../src/store/bucketsettings.ts";
import { abortsNow, expireIfUnchanged, expiresNow, midnightAfter, runLifecycle } from "../../src/store/lifecycle.ts";
import { replicator } from "../../actors/replicator/index.ts";
import { controlSubject } from "../../src/subjects/index.ts";

const DAY = 86_400_000;

test("the rules' arithmetic: S3 rounds to the next midnight UTC; prefixes; disabled rules", (t) => {
  const mtime = new Date("2026-03-10T15:00:00Z");
  t.deepEqual(midnightAfter(mtime, 1), new Date("2026-03-12T00:00:00Z"));
  const rules = [{ enabled: true, prefix: "logs/", expirationDays: 1 }, { enabled: false, prefix: "", expirationDays: 1 }];
  t.false(expiresNow(rules, "logs/a", mtime, new Date("2026-03-11T23:59:59Z")));
  t.true(expiresNow(rules, "logs/a", mtime, new Date("2026-03-12T00:00:00Z")));
  t.false(expiresNow(rules, "other", mtime, new Date("2027-01-01T00:00:00Z")), "the rule that covers it is disabled");
  t.true(expiresNow([{ enabled: true, prefix: "", expirationDate: "2026-03-01T00:00:00.000Z" }], "x", mtime, new Date("2026-03-10T16:00:00Z")));
  t.false(expiresNow([{ enabled: true, prefix: "", noncurrentDays: 1 }], "x", mtime, new Date("2030-01-01T00:00:00Z")), "non-current rules never touch current objects");
  t.true(abortsNow([{ enabled: true, prefix: "", abortIncompleteDays: 2 }], "x", mtime, new Date("2026-03-13T00:00:00Z")));
  t.false(abortsNow([{ enabled: true, prefix: "", abortIncompleteDays: 2 }], "x", mtime, new Date("2026-03-12T23:00:00Z")));
});

test("a lifecycle pass with an injected clock expires old objects under the prefix and aborts old uploads; a newer write is never expired", async (t) => {
  const { endpoint, client } = await startS3(t);
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: S3_CREDS.accessKey, secretAccessKey: S3_CREDS.secretKey } });
  t.teardown(() => s3.destroy());
  await client.createBucket("lc-bucket");
  await client.createBucket("lc-none");
  for (const k of ["logs/a", "logs/b", "keep/c"]) await client.put("lc-bucket", k, k);
  await client.put("lc-none", "logs/a", "no rules here");
  await s3.send(new PutBucketLifecycleConfigurationCommand({
    Bucket: "lc-bucket",
    LifecycleConfiguration: { Rules: [{ ID: "logs", Status: "Enabled", Filter: { Prefix: "logs/" }, Expiration: { Days: 1 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }] },
  }));
  const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: "lc-bucket", Key: "logs/big" }));
  const nc = client.nc;
  const jet = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
  const settings = new BucketSettings(nc);
  const log = createLogger({ level: "silent" });
  const pass = (now: Date) => runLifecycle({ client, jet, settings, now, log });

  t.deepEqual(await pass(new Date()), { buckets: 1, expired: 0, noncurrentExpired: 0, aborted: 0, errors: 0 }, "nothing is old yet");
  const later = new Date(Date.now() + 3 * DAY);
  t.deepEqual(await pass(later), { buckets: 1, expired: 2, noncurrentExpired: 0, aborted: 1, errors: 0 });
  t.deepEqual((await client.listPage("lc-bucket")).contents.map((c) => c.key), ["keep/c"]);
  t.is((await client.listPage("lc-none")).contents.length, 1, "a bucket without rules is untouched");
  t.is((await client.listMultipartUploads("lc-bucket")).uploads.length, 0);
  t.truthy(upload.UploadId);
  t.deepEqual(await pass(later), { buckets: 1, expired: 0, noncurrentExpired: 0, aborted: 0, errors: 0 }, "a second pass finds nothing left to do");

  // compare-and-set: the version judged expired is gone by the time of the delete → the newer one stays
  const old = await client.put("lc-bucket", "logs/raced", "old");
  await client.put("lc-bucket", "logs/raced", "new");
  t.false(await expireIfUnchanged(jet, "lc-bucket", "logs/raced", old.revision));
  t.is(Buffer.from(await client.getBytes("lc-bucket", "logs/raced")).toString(), "new");
});

test("the replicator applies lifecycle rules on request (shoal.ctl.replicator.lifecycle)", async (t) => {
  const { url, client } = await startS3(t);
  await runActor(t, url, replicator);
  await client.createBucket("lc-repl");
  await client.put("lc-repl", "old/x", "x");
  await client.put("lc-repl", "new/y", "y");
  const today = new Date(new Date().toISOString().slice(0, 10) + "T00:00:00Z").toISOString();
  await new BucketSettings(client.nc).put("lc-repl", "lifecycle", [{ enabled: true, prefix: "old/", expirationDate: today }]);
  const r = (await client.nc.request(controlSubject("replicator", "lifecycle"), "{}", { timeout: 20_000 })).json<{ expired: number }>();
  t.is(r.expired, 1);
  t.deepEqual((await client.listPage("lc-repl")).contents.map((c) => c.key), ["new/y"]);
});
