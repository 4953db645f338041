/**
 * Real S3 clients, unchanged, against the gateway: awscli, boto3, s3cmd,
 * rclone and minio-js (the AWS SDK v3 has its own file). Each runs the same
 * scenario: create a bucket; put a small object and one >= 64 MiB
 * (multipart); list with prefix and delimiter; ranged get; copy; presigned
 * GET and PUT fetched with curl; delete; remove the bucket. What a tool
 * cannot do itself (s3cmd and awscli presign only GET, s3cmd only with SigV2)
 * is done with Shoal's own signer, the tool still moving the bytes.
 */
import test, { type ExecutionContext } from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as Minio from "minio";
import { startS3, S3_CREDS } from "../helpers/gateway.ts";
import { tempDir } from "../helpers/nats.ts";
import { presignQuery } from "../../src/gateway/auth.ts";
import type { ShoalClient } from "../../src/client/index.ts";

const exec = promisify(execFile);
const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function has(tool: string): Promise<boolean> {
  return exec("sh", ["-c", `command -v ${tool}`]).then(
    () => true,
    () => false,
  );
}

interface Fixture {
  dir: string;
  small: string;
  big: string;
  bigBytes: Buffer;
  endpoint: string;
  host: string;
  shoal: ShoalClient;
}

async function fixture(t: ExecutionContext): Promise<Fixture> {
  const { endpoint, client } = await startS3(t);
  const dir = tempDir(t, "shoal-s3-");
  const small = join(dir, "small.txt");
  writeFileSync(small, "hello from a real client\n");
  const bigBytes = randomBytes(65 * MiB + 4321);
  const big = join(dir, "big.bin");
  writeFileSync(big, bigBytes);
  return { dir, small, big, bigBytes, endpoint, host: new URL(endpoint).host, shoal: client };
}

/** A presigned URL made by Shoal's signer, for tools that cannot presign themselves. */
function presigned(f: Fixture, method: string, bucket: string, key: string): string {
  const rawPath = `/${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  return `${f.endpoint}${rawPath}?${presignQuery({ method, rawPath, host: f.host }, S3_CREDS, 300)}`;
}

async function curlGet(url: string): Promise<string> {
  return (await exec("curl", ["-sf", url])).stdout;
}
async function curlPut(url: string, body: string): Promise<void> {
  await exec("curl", ["-sf", "-X", "PUT", "--data-binary", body, "-H", "Content-Type:", url]);
}

/** What every scenario ends with: the store holds exactly what was sent. */
async function checkStored(t: ExecutionContext, f: Fixture, bucket: string): Promise<void> {
  const big = await f.shoal.get(bucket, "big/blob.bin");
  t.is(big.info.size, f.bigBytes.length);
  t.is(sha(Buffer.from(await big.bytes())), sha(f.bigBytes));
  t.regex(big.info.etag, /-\d+$/, "uploaded as multipart");
  t.is(Buffer.from(await f.shoal.getBytes(bucket, "docs/a.txt")).toString(), "hello from a real client\n");
}

test("awscli", async (t) => {
  if (!(await has("aws"))) return t.fail("awscli is not installed (.ci/run installs it)");
  const f = await fixture(t);
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: S3_CREDS.accessKey,
    AWS_SECRET_ACCESS_KEY: S3_CREDS.secretKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_CONFIG_FILE: join(f.dir, "aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(f.dir, "none"),
    AWS_PAGER: "",
  };
  // awscli v1 presigns with SigV2 unless told otherwise (v2 signs v4 always)
  writeFileSync(join(f.dir, "aws-config"), "[default]\ns3 =\n    signature_version = s3v4\n    addressing_style = path\n");
  const aws = async (...args: string[]) => (await exec("aws", ["--endpoint-url", f.endpoint, ...args], { env, maxBuffer: 64 * MiB })).stdout;
  await aws("s3", "mb", "s3://aws-bucket");
  await aws("s3", "cp", f.small, "s3://aws-bucket/docs/a.txt");
  await aws("s3", "cp", f.big, "s3://aws-bucket/big/blob.bin");
  await checkStored(t, f, "aws-bucket");
  const list = JSON.parse(await aws("s3api", "list-objects-v2", "--bucket", "aws-bucket", "--delimiter", "/")) as { CommonPrefixes: Array<{ Prefix: string }> };
  t.deepEqual(list.CommonPrefixes.map((p) => p.Prefix), ["big/", "docs/"]);
  const ls = await aws("s3", "ls", "s3://aws-bucket/docs/");
  t.regex(ls, /a\.txt/);
  await aws("s3api", "get-object", "--bucket", "aws-bucket", "--key", "big/blob.bin", "--range", "bytes=100-199", join(f.dir, "range.out"));
  t.true(readFileSync(join(f.dir, "range.out")).equals(f.bigBytes.subarray(100, 200)));
  await aws("s3", "cp", "s3://aws-bucket/docs/a.txt", "s3://aws-bucket/docs/copy.txt");
  t.is(Buffer.from(await f.shoal.getBytes("aws-bucket", "docs/copy.txt")).toString(), "hello from a real client\n");
  const url = (await aws("s3", "presign", "s3://aws-bucket/docs/a.txt", "--expires-in", "300")).trim();
  t.is(await curlGet(url), "hello from a real client\n");
  await curlPut(presigned(f, "PUT", "aws-bucket", "docs/put.txt"), "presigned");
  t.is(await aws("s3", "cp", "s3://aws-bucket/docs/put.txt", "-"), "presigned");
  await aws("s3", "rm", "--recursive", "s3://aws-bucket/");
  await aws("s3", "rb", "s3://aws-bucket");
  t.false((await f.shoal.listBuckets()).some((b) => b.name === "aws-bucket"));
});

test("boto3", async (t) => {
  const f = await fixture(t);
  const script = `
import sys, json, boto3, urllib.request
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
endpoint, ak, sk, small, big, out = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
s3.create_bucket(Bucket="boto-bucket")
s3.upload_file(small, "boto-bucket", "docs/a.txt")
s3.upload_file(big, "boto-bucket", "big/blob.bin", Config=TransferConfig(multipart_threshold=8*1024*1024, multipart_chunksize=8*1024*1024))
r = {}
l = s3.list_objects_v2(Bucket="boto-bucket", Delimiter="/")
r["prefixes"] = [p["Prefix"] for p in l.get("CommonPrefixes", [])]
l = s3.list_objects(Bucket="boto-bucket", Prefix="docs/")
r["docs"] = [o["Key"] for o in l.get("Contents", [])]
r["range"] = s3.get_object(Bucket="boto-bucket", Key="big/blob.bin", Range="bytes=1000-1009")["Body"].read().hex()
s3.copy_object(Bucket="boto-bucket", Key="docs/copy.txt", CopySource={"Bucket": "boto-bucket", "Key": "docs/a.txt"})
r["copy"] = s3.get_object(Bucket="boto-bucket", Key="docs/copy.txt")["Body"].read().decode()
r["get_url"] = s3.generate_presigned_url("get_object", Params={"Bucket": "boto-bucket", "Key": "docs/a.txt"}, ExpiresIn=300)
r["put_url"] = s3.generate_presigned_url("put_object", Params={"Bucket": "boto-bucket", "Key": "docs/put.txt"}, ExpiresIn=300)
json.dump(r, open(out, "w"))
`;
  writeFileSync(join(f.dir, "boto.py"), script);
  const out = join(f.dir, "boto.json");
  await exec("python3", [join(f.dir, "boto.py"), f.endpoint, S3_CREDS.accessKey, S3_CREDS.secretKey, f.small, f.big, out]);
  const r = JSON.parse(readFileSync(out, "utf8")) as { prefixes: string[]; docs: string[]; range: string; copy: string; get_url: string; put_url: string };
  await checkStored(t, f, "boto-bucket");
  t.deepEqual(r.prefixes, ["big/", "docs/"]);
  t.deepEqual(r.docs, ["docs/a.txt"]);
  t.is(r.range, f.bigBytes.subarray(1000, 1010).toString("hex"));
  t.is(r.copy, "hello from a real client\n");
  t.is(await curlGet(r.get_url), "hello from a real client\n");
  await curlPut(r.put_url, "presigned by boto3");
  t.is(Buffer.from(await f.shoal.getBytes("boto-bucket", "docs/put.txt")).toString(), "presigned by boto3");
  const cleanup = `
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3], region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="boto-bucket")["Contents"]]
res = s3.delete_objects(Bucket="boto-bucket", Delete={"Objects": [{"Key": k} for k in keys]})
assert len(res["Deleted"]) == len(keys), res
s3.delete_bucket(Bucket="boto-bucket")
`;
  writeFileSync(join(f.dir, "clean.py"), cleanup);
  await exec("python3", [join(f.dir, "clean.py"), f.endpoint, S3_CREDS.accessKey, S3_CREDS.secretKey]);
  t.false((await f.shoal.listBuckets()).some((b) => b.name === "boto-bucket"));
});

test("s3cmd", async (t) => {
  if (!(await has("s3cmd"))) return t.fail("s3cmd is not installed (.ci/run installs it)");
  const f = await fixture(t);
  const cfg = join(f.dir, "s3cfg");
  writeFileSync(cfg, [
    "[default]",
    `access_key = ${S3_CREDS.accessKey}`,
    `secret_key = ${S3_CREDS.secretKey}`,
    `host_base = ${f.host}`,
    `host_bucket = ${f.host}`,
    "use_https = False",
    "signature_v2 = False",
    "bucket_location = us-east-1",
    "multipart_chunk_size_mb = 15",
    "",
  ].join("\n"));
  const s3cmd = async (...args: string[]) => (await exec("s3cmd", ["-c", cfg, ...args], { maxBuffer: 16 * MiB })).stdout;
  await s3cmd("mb", "s3://s3cmd-bucket");
  await s3cmd("put", f.small, "s3://s3cmd-bucket/docs/a.txt");
  await s3cmd("put", f.big, "s3://s3cmd-bucket/big/blob.bin");
  await checkStored(t, f, "s3cmd-bucket");
  const ls = await s3cmd("ls", "s3://s3cmd-bucket/");
  t.regex(ls, /DIR\s+s3:\/\/s3cmd-bucket\/big\//);
  t.regex(ls, /DIR\s+s3:\/\/s3cmd-bucket\/docs\//);
  t.regex(await s3cmd("ls", "s3://s3cmd-bucket/docs/"), /docs\/a\.txt/);
  await s3cmd("cp", "s3://s3cmd-bucket/docs/a.txt", "s3://s3cmd-bucket/docs/copy.txt");
  await s3cmd("get", "s3://s3cmd-bucket/docs/copy.txt", join(f.dir, "copy.out"));
  t.is(readFileSync(join(f.dir, "copy.out"), "utf8"), "hello from a real client\n");
  // ranged get: s3cmd has none; a presigned URL and curl's Range do it
  const range = await exec("curl", ["-sf", "-r", "5-9", presigned(f, "GET", "s3cmd-bucket", "big/blob.bin")], { encoding: "buffer" });
  t.true(Buffer.from(range.stdout).equals(f.bigBytes.subarray(5, 10)));
  await curlPut(presigned(f, "PUT", "s3cmd-bucket", "docs/put.txt"), "presigned");
  t.is(await curlGet(presigned(f, "GET", "s3cmd-bucket", "docs/put.txt")), "presigned");
  await s3cmd("del", "--recursive", "--force", "s3://s3cmd-bucket/");
  await s3cmd("rb", "s3://s3cmd-bucket");
  t.false((await f.shoal.listBuckets()).some((b) => b.name === "s3cmd-bucket"));
});

test("rclone", async (t) => {
  if (!(await has("rclone"))) return t.fail("rclone is not installed (.ci/run installs it)");
  const f = await fixture(t);
  // AWS_CA_BUNDLE (set on some machines) makes rclone's S3 backend fail on plain HTTP
  const { AWS_CA_BUNDLE: _ignored, ...base } = process.env;
  const env = {
    ...base,
    RCLONE_CONFIG: join(f.dir, "rclone.conf"),
    RCLONE_CONFIG_SHOAL_TYPE: "s3",
    RCLONE_CONFIG_SHOAL_PROVIDER: "Other",
    RCLONE_CONFIG_SHOAL_ACCESS_KEY_ID: S3_CREDS.accessKey,
    RCLONE_CONFIG_SHOAL_SECRET_ACCESS_KEY: S3_CREDS.secretKey,
    RCLONE_CONFIG_SHOAL_ENDPOINT: f.endpoint,
    RCLONE_CONFIG_SHOAL_REGION: "us-east-1",
    RCLONE_CONFIG_SHOAL_FORCE_PATH_STYLE: "true",
  };
  writeFileSync(env.RCLONE_CONFIG, "");
  const rclone = async (...args: string[]) => (await exec("rclone", ["--s3-upload-cutoff", "8M", "--s3-chunk-size", "8M", ...args], { env, maxBuffer: 16 * MiB, encoding: "buffer" })).stdout;
  await rclone("mkdir", "shoal:rclone-bucket");
  await rclone("copyto", f.small, "shoal:rclone-bucket/docs/a.txt");
  await rclone("copyto", f.big, "shoal:rclone-bucket/big/blob.bin");
  await checkStored(t, f, "rclone-bucket");
  const top = JSON.parse((await rclone("lsjson", "shoal:rclone-bucket")).toString()) as Array<{ Path: string; IsDir: boolean }>;
  t.deepEqual(top.map((e) => [e.Path, e.IsDir]), [["big", true], ["docs", true]]);
  const part = await rclone("cat", "--offset", "70000", "--count", "16", "shoal:rclone-bucket/big/blob.bin");
  t.true(part.equals(f.bigBytes.subarray(70000, 70016)));
  await rclone("copyto", "shoal:rclone-bucket/docs/a.txt", "shoal:rclone-bucket/docs/copy.txt");
  t.is((await rclone("cat", "shoal:rclone-bucket/docs/copy.txt")).toString(), "hello from a real client\n");
  const link = (await rclone("link", "--expire", "5m", "shoal:rclone-bucket/docs/a.txt")).toString().trim();
  t.is(await curlGet(link), "hello from a real client\n");
  await curlPut(presigned(f, "PUT", "rclone-bucket", "docs/put.txt"), "presigned");
  t.is((await rclone("cat", "shoal:rclone-bucket/docs/put.txt")).toString(), "presigned");
  await rclone("purge", "shoal:rclone-bucket");
  t.false((await f.shoal.listBuckets()).some((b) => b.name === "rclone-bucket"));
});

test("minio-js", async (t) => {
  const f = await fixture(t);
  const url = new URL(f.endpoint);
  const mc = new Minio.Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: S3_CREDS.accessKey, secretKey: S3_CREDS.secretKey, region: "us-east-1", pathStyle: true });
  await mc.makeBucket("minio-bucket", "us-east-1");
  await mc.fPutObject("minio-bucket", "docs/a.txt", f.small);
  await mc.fPutObject("minio-bucket", "big/blob.bin", f.big, {}); // minio-js goes multipart above 64 MiB
  await checkStored(t, f, "minio-bucket");
  const names: string[] = [];
  for await (const o of mc.listObjectsV2("minio-bucket", "", false) as AsyncIterable<{ name?: string; prefix?: string }>) names.push(o.prefix ?? o.name ?? "");
  t.deepEqual(names, ["big/", "docs/"]);
  const part = await mc.getPartialObject("minio-bucket", "big/blob.bin", 4096, 32);
  const chunks: Buffer[] = [];
  for await (const c of part) chunks.push(c as Buffer);
  t.true(Buffer.concat(chunks).equals(f.bigBytes.subarray(4096, 4128)));
  await mc.copyObject("minio-bucket", "docs/copy.txt", "/minio-bucket/docs/a.txt");
  t.is(Buffer.from(await f.shoal.getBytes("minio-bucket", "docs/copy.txt")).toString(), "hello from a real client\n");
  t.is(await curlGet(await mc.presignedGetObject("minio-bucket", "docs/a.txt", 300)), "hello from a real client\n");
  await curlPut(await mc.presignedPutObject("minio-bucket", "docs/put.txt", 300), "presigned by minio");
  t.is(Buffer.from(await f.shoal.getBytes("minio-bucket", "docs/put.txt")).toString(), "presigned by minio");
  await mc.removeObjects("minio-bucket", ["docs/a.txt", "docs/copy.txt", "docs/put.txt", "big/blob.bin"]);
  await mc.removeBucket("minio-bucket");
  t.false((await f.shoal.listBuckets()).some((b) => b.name === "minio-bucket"));
});
