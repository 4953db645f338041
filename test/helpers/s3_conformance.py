"""
S3 conformance checks through boto3 (driven by test/integration/s3-conformance.test.ts).

argv: endpoint ak sk other_ak other_sk late_endpoint eager_endpoint out.json
  late_endpoint  a gateway on the same store whose clock runs 2 hours ahead
  eager_endpoint a gateway that commits CompleteMultipartUpload to 200 at once
Writes what it observed as JSON; the ava test asserts on it.
"""
import json, sys, urllib.request, urllib.error
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, ak, sk, other_ak, other_sk, late, eager, out = sys.argv[1:9]
obs = {}


def client(url=endpoint, a=ak, s=sk, sig="s3v4"):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=a, aws_secret_access_key=s, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, signature_version=sig, retries={"max_attempts": 1}))


def err(fn, *a, **kw):
    try:
        fn(*a, **kw)
        return {"status": 200, "code": None}
    except ClientError as e:
        return {"status": e.response["ResponseMetadata"]["HTTPStatusCode"], "code": e.response["Error"]["Code"],
                "headers": {k: v for k, v in e.response["ResponseMetadata"].get("HTTPHeaders", {}).items() if k in ("etag", "last-modified")}}


def fetch(url, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return {"status": r.status, "body": r.read().decode("utf-8", "replace"), "headers": dict(r.headers)}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode("utf-8", "replace"), "headers": dict(e.headers)}


s3 = client()
B = "conf-bucket"
s3.create_bucket(Bucket=B)
MiB = 1024 * 1024
p1 = b"a" * (5 * MiB)
p2 = b"b" * 1234

# --- multipart completion errors --------------------------------------------------------
u = s3.create_multipart_upload(Bucket=B, Key="mp", CacheControl="no-store", ContentDisposition="inline")["UploadId"]
e1 = s3.upload_part(Bucket=B, Key="mp", UploadId=u, PartNumber=1, Body=p1)["ETag"]
e2 = s3.upload_part(Bucket=B, Key="mp", UploadId=u, PartNumber=2, Body=p2)["ETag"]
complete = lambda c, parts, up=u, key="mp": c.complete_multipart_upload(Bucket=B, Key=key, UploadId=up, MultipartUpload={"Parts": parts})
obs["mpu_invalid_part"] = err(complete, s3, [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": '"0123456789abcdef0123456789abcdef"'}])
obs["mpu_invalid_order"] = err(complete, s3, [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}])
obs["mpu_no_such_upload"] = err(complete, s3, [{"PartNumber": 1, "ETag": e1}], "nosuchupload")
# the same error after the 200 has been sent: an Error document inside the 200
obs["mpu_invalid_part_after_200"] = err(complete, client(eager), [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}])
small = s3.create_multipart_upload(Bucket=B, Key="small")["UploadId"]
s1 = s3.upload_part(Bucket=B, Key="small", UploadId=small, PartNumber=1, Body=b"x" * 100)["ETag"]
s2 = s3.upload_part(Bucket=B, Key="small", UploadId=small, PartNumber=2, Body=b"y" * 100)["ETag"]
obs["mpu_too_small"] = err(complete, s3, [{"PartNumber": 1, "ETag": s1}, {"PartNumber": 2, "ETag": s2}], small, "small")
done = complete(s3, [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
obs["mpu_etag"] = done["ETag"]
again = err(complete, s3, [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
obs["mpu_repeated"] = {"status": again["status"], "code": again["code"]}
hm = s3.head_object(Bucket=B, Key="mp")
obs["mpu_headers"] = {"cache": hm.get("CacheControl"), "disposition": hm.get("ContentDisposition")}

# --- part-number reads ------------------------------------------------------------------
g1 = s3.get_object(Bucket=B, Key="mp", PartNumber=1)
obs["part1"] = {"len": len(g1["Body"].read()), "count": g1.get("PartsCount"), "range": g1.get("ContentRange")}
g2 = s3.get_object(Bucket=B, Key="mp", PartNumber=2)
obs["part2"] = {"body_ok": g2["Body"].read() == p2, "count": g2.get("PartsCount"), "range": g2.get("ContentRange")}
h2 = s3.head_object(Bucket=B, Key="mp", PartNumber=2)
obs["head_part2"] = {"len": h2["ContentLength"], "count": h2.get("PartsCount")}
obs["part3"] = err(s3.get_object, Bucket=B, Key="mp", PartNumber=3)
s3.put_object(Bucket=B, Key="plain", Body=b"plain body")
obs["plain_part1"] = s3.get_object(Bucket=B, Key="plain", PartNumber=1)["Body"].read().decode()
obs["plain_part2"] = err(s3.get_object, Bucket=B, Key="plain", PartNumber=2)

# --- presigned URLs ---------------------------------------------------------------------
url = lambda c, method, key, exp: c.generate_presigned_url(method, Params={"Bucket": B, "Key": key}, ExpiresIn=exp)
obs["presign_valid"] = fetch(url(s3, "get_object", "plain", 300))["status"]
for name, exp in (("presign_zero", 0), ("presign_negative", -1), ("presign_too_long", 604801)):
    r = fetch(url(s3, "get_object", "plain", exp))
    obs[name] = {"status": r["status"], "code": r["body"].split("<Code>")[1].split("</Code>")[0] if "<Code>" in r["body"] else None}
get_url = url(s3, "get_object", "plain", 3600)
put_url = url(s3, "put_object", "late-put", 3600)
obs["presign_expired_get"] = fetch(get_url.replace(endpoint, late))["status"]
obs["presign_expired_put"] = fetch(put_url.replace(endpoint, late), "PUT", b"late")["status"]
obs["presign_put_in_time"] = fetch(put_url, "PUT", b"in time")["status"]
obs["presign_create_bucket"] = fetch(s3.generate_presigned_url("create_bucket", Params={"Bucket": "presigned-bucket"}, ExpiresIn=300), "PUT")["status"]

# --- stored headers, 304 ----------------------------------------------------------------
s3.put_object(Bucket=B, Key="hdrs", Body=b"x", CacheControl="max-age=60", Expires="Wed, 21 Oct 2037 07:28:00 GMT",
              ContentEncoding="gzip", ContentDisposition='attachment; filename="x.bin"', ContentLanguage="fr")
h = s3.head_object(Bucket=B, Key="hdrs")["ResponseMetadata"]["HTTPHeaders"]
obs["stored_headers"] = {k: h.get(k) for k in ("cache-control", "expires", "content-encoding", "content-disposition", "content-language")}
g = s3.get_object(Bucket=B, Key="hdrs")
obs["stored_headers_get"] = {k: g["ResponseMetadata"]["HTTPHeaders"].get(k) for k in ("cache-control", "content-encoding")}
etag = s3.head_object(Bucket=B, Key="plain")["ETag"]
obs["not_modified"] = err(s3.get_object, Bucket=B, Key="plain", IfNoneMatch=etag)
obs["plain_etag"] = etag

# --- listing ----------------------------------------------------------------------------
l0 = s3.list_objects_v2(Bucket=B, MaxKeys=0)
obs["max_keys_0"] = {"count": l0["KeyCount"], "truncated": l0["IsTruncated"], "contents": "Contents" in l0}
l1 = s3.list_objects(Bucket=B, MaxKeys=0)
obs["max_keys_0_v1"] = {"truncated": l1["IsTruncated"], "contents": "Contents" in l1}
le = s3.list_objects_v2(Bucket=B, ContinuationToken="")
obs["empty_token"] = {"token": le.get("ContinuationToken"), "keys": len(le.get("Contents", []))}

# --- keys -------------------------------------------------------------------------------
keys = ["a b", "100%", "a+b", "q?x", "h#1", "\u00fcn\u00ef/\u65e5\u672c", "x&<>\"'y", "k" * 1024, "\u00e9" * 512, "~!@$^*()[]{};:,=`|\\",
        "line\nbreak", "cr\rkey", "tab\tkey", " lead", "trail ", "\n"]
ok = []
for k in keys:
    s3.put_object(Bucket=B, Key=k, Body=k.encode())
    ok.append(s3.get_object(Bucket=B, Key=k)["Body"].read() == k.encode() and s3.head_object(Bucket=B, Key=k)["ContentLength"] == len(k.encode()))
obs["special_keys"] = ok
listed = set()
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=B, PaginationConfig={"PageSize": 3}):
    listed.update(o["Key"] for o in page.get("Contents", []))
obs["special_keys_listed"] = all(k in listed for k in keys)
obs["key_too_long"] = err(s3.put_object, Bucket=B, Key="k" * 1025, Body=b"x")
obs["special_deleted"] = len(s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": k} for k in keys]})["Deleted"])

# --- buckets: re-create, another owner --------------------------------------------------
obs["recreate_own"] = err(s3.create_bucket, Bucket=B)
obs["recreate_kept"] = s3.head_object(Bucket=B, Key="plain")["ContentLength"]
obs["recreate_other"] = err(client(a=other_ak, s=other_sk).create_bucket, Bucket=B)

# --- SigV2 (boto's "s3" signer: header auth) --------------------------------------------
v2 = client(sig="s3")
v2.put_object(Bucket=B, Key="v2/a b+c", Body=b"signed v2", ContentType="text/plain", Metadata={"m": "1"})
obs["v2_get"] = v2.get_object(Bucket=B, Key="v2/a b+c")["Body"].read().decode()
obs["v2_list"] = [o["Key"] for o in v2.list_objects(Bucket=B, Prefix="v2/")["Contents"]]
obs["v2_bad_secret"] = err(client(s="wrong", sig="s3").get_object, Bucket=B, Key="v2/a b+c")
v2url = v2.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "v2/a b+c"}, ExpiresIn=300)
obs["v2_presigned"] = {"is_v2": "AWSAccessKeyId=" in v2url, "body": fetch(v2url)["body"]}
obs["v2_presigned_expired"] = fetch(v2url.replace(endpoint, late))["status"]
v2.delete_object(Bucket=B, Key="v2/a b+c")

# --- CORS -------------------------------------------------------------------------------
obs["cors_none"] = err(s3.get_bucket_cors, Bucket=B)
s3.put_bucket_cors(Bucket=B, CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": ["https://app.example"], "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]})
obs["cors_rules"] = s3.get_bucket_cors(Bucket=B)["CORSRules"]
pre = fetch(f"{endpoint}/{B}/plain", "OPTIONS", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type,x-amz-date"})
obs["cors_preflight"] = {"status": pre["status"], "origin": pre["headers"].get("Access-Control-Allow-Origin"), "methods": pre["headers"].get("Access-Control-Allow-Methods"),
                         "headers": pre["headers"].get("Access-Control-Allow-Headers"), "max_age": pre["headers"].get("Access-Control-Max-Age")}
obs["cors_preflight_denied"] = fetch(f"{endpoint}/{B}/plain", "OPTIONS", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})["status"]
got = fetch(url(s3, "get_object", "plain", 300), headers={"Origin": "https://app.example"})
obs["cors_get"] = {"status": got["status"], "origin": got["headers"].get("Access-Control-Allow-Origin"), "expose": got["headers"].get("Access-Control-Expose-Headers")}
s3.delete_bucket_cors(Bucket=B)
obs["cors_deleted"] = err(s3.get_bucket_cors, Bucket=B)

# --- lifecycle configuration ------------------------------------------------------------
obs["lc_none"] = err(s3.get_bucket_lifecycle_configuration, Bucket=B)
s3.put_bucket_lifecycle_configuration(Bucket=B, LifecycleConfiguration={"Rules": [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 7}},
    {"ID": "old", "Filter": {"Prefix": ""}, "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]})
obs["lc_rules"] = s3.get_bucket_lifecycle_configuration(Bucket=B)["Rules"]
obs["lc_transition"] = err(s3.put_bucket_lifecycle_configuration, Bucket=B, LifecycleConfiguration={"Rules": [
    {"ID": "t", "Filter": {"Prefix": ""}, "Status": "Enabled", "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]})
s3.delete_bucket_lifecycle(Bucket=B)
obs["lc_deleted"] = err(s3.get_bucket_lifecycle_configuration, Bucket=B)

# --- versioning (reads of an unversioned bucket) -----------------------------------------
obs["versioning"] = s3.get_bucket_versioning(Bucket=B).get("Status")
vs = s3.list_object_versions(Bucket=B, Prefix="plain")
obs["versions"] = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in vs.get("Versions", [])]
obs["version_null"] = s3.get_object(Bucket=B, Key="plain", VersionId="null")["Body"].read().decode()
obs["version_other"] = err(s3.get_object, Bucket=B, Key="plain", VersionId="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
s3.put_object(Bucket=B, Key="vdel", Body=b"x")
dr = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "vdel", "VersionId": "null"}, {"Key": "plain", "VersionId": "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd"}]})
obs["delete_versions"] = {"deleted": [d["Key"] for d in dr.get("Deleted", [])], "errors": [(e["Key"], e["Code"]) for e in dr.get("Errors", [])]}
obs["versioning_enable"] = err(s3.put_bucket_versioning, Bucket=B, VersioningConfiguration={"Status": "Enabled"})

json.dump(obs, open(out, "w"), indent=1, default=str)
