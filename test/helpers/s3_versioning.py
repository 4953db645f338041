"""
S3 versioning through boto3 (driven by test/integration/s3-versioning.test.ts).

argv: endpoint ak sk bucket out.json
Writes what it observed as JSON; the ava test asserts on it.
"""
import json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, ak, sk, B, out = sys.argv[1:6]
obs = {}
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}))


def err(fn, *a, **kw):
    try:
        r = fn(*a, **kw)
        return {"status": r["ResponseMetadata"]["HTTPStatusCode"], "code": None}
    except ClientError as e:
        h = e.response["ResponseMetadata"].get("HTTPHeaders", {})
        return {"status": e.response["ResponseMetadata"]["HTTPStatusCode"], "code": e.response["Error"]["Code"],
                "delete_marker": h.get("x-amz-delete-marker"), "version_id": h.get("x-amz-version-id")}


def body(**kw):
    return s3.get_object(Bucket=B, **kw)["Body"].read().decode()


def versions(prefix=""):
    r = s3.list_object_versions(Bucket=B, Prefix=prefix)
    out = [("V", v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in r.get("Versions", [])]
    out += [("M", m["Key"], m["VersionId"], m["IsLatest"], 0) for m in r.get("DeleteMarkers", [])]
    return out


s3.create_bucket(Bucket=B)
obs["state_new"] = s3.get_bucket_versioning(Bucket=B).get("Status")
s3.put_object(Bucket=B, Key="early", Body=b"before versioning")
s3.put_bucket_versioning(Bucket=B, VersioningConfiguration={"Status": "Enabled"})
obs["state_enabled"] = s3.get_bucket_versioning(Bucket=B).get("Status")
obs["early"] = {"head": s3.head_object(Bucket=B, Key="early").get("VersionId"), "list": versions("early")}

# put twice: two versions
v1 = s3.put_object(Bucket=B, Key="k", Body=b"one")["VersionId"]
v2 = s3.put_object(Bucket=B, Key="k", Body=b"second")["VersionId"]
obs["v1"], obs["v2"] = v1, v2
obs["list_two"] = versions("k")
obs["get_current"] = body(Key="k")
obs["get_v1"] = body(Key="k", VersionId=v1)
obs["head_v1"] = {k: s3.head_object(Bucket=B, Key="k", VersionId=v1)[k] for k in ("VersionId", "ContentLength")}
obs["get_current_version_header"] = s3.get_object(Bucket=B, Key="k")["VersionId"]

# delete without an id: a delete marker
d = s3.delete_object(Bucket=B, Key="k")
obs["marker"] = {"DeleteMarker": d.get("DeleteMarker"), "VersionId": d.get("VersionId")}
obs["get_after_marker"] = err(s3.get_object, Bucket=B, Key="k")
obs["head_after_marker"] = err(s3.head_object, Bucket=B, Key="k")
obs["list_marker"] = versions("k")
obs["get_v1_after_marker"] = body(Key="k", VersionId=v1)
obs["get_marker_by_id"] = err(s3.get_object, Bucket=B, Key="k", VersionId=d.get("VersionId"))
obs["list_objects_after_marker"] = [o["Key"] for o in s3.list_objects_v2(Bucket=B).get("Contents", [])]

# delete the marker by id: the previous version is current again
dm = s3.delete_object(Bucket=B, Key="k", VersionId=d["VersionId"])
obs["delete_marker_by_id"] = {"DeleteMarker": dm.get("DeleteMarker"), "VersionId": dm.get("VersionId")}
obs["get_restored"] = body(Key="k")

# delete the current version by id: the one before becomes current
s3.delete_object(Bucket=B, Key="k", VersionId=v2)
obs["get_after_v2_deleted"] = body(Key="k")
obs["list_after_v2_deleted"] = versions("k")
obs["get_v2_gone"] = err(s3.get_object, Bucket=B, Key="k", VersionId=v2)
obs["get_bad_id"] = err(s3.get_object, Bucket=B, Key="k", VersionId="not/an-id")

# a non-current version deleted by id: the current one stays
v3 = s3.put_object(Bucket=B, Key="k", Body=b"third")["VersionId"]
s3.delete_object(Bucket=B, Key="k", VersionId=v1)
obs["after_noncurrent_deleted"] = {"current": body(Key="k"), "list": versions("k"), "v3": v3}

# copy from a version
c = s3.copy_object(Bucket=B, Key="copied", CopySource={"Bucket": B, "Key": "k", "VersionId": v3})
obs["copy"] = {"CopySourceVersionId": c.get("CopySourceVersionId"), "VersionId": c.get("VersionId"), "body": body(Key="copied")}

# multipart completion gets a version id
u = s3.create_multipart_upload(Bucket=B, Key="mp")
p = s3.upload_part(Bucket=B, Key="mp", UploadId=u["UploadId"], PartNumber=1, Body=b"m" * 100)
cm = s3.complete_multipart_upload(Bucket=B, Key="mp", UploadId=u["UploadId"], MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
obs["mpu_version"] = cm.get("VersionId")

# pagination: key-marker / version-id-marker, max-keys 2
for k, n in (("pa", 3), ("pb", 2), ("pc", 1)):
    for i in range(n):
        s3.put_object(Bucket=B, Key=k, Body=("%s-%d" % (k, i)).encode())
whole = s3.list_object_versions(Bucket=B, Prefix="p")
obs["page_whole"] = [(v["Key"], v["VersionId"]) for v in whole.get("Versions", [])]
paged, pages, km, vm = [], 0, None, None
while pages < 20:
    kw = {"Bucket": B, "Prefix": "p", "MaxKeys": 2}
    if km is not None:
        kw["KeyMarker"] = km
        if vm:
            kw["VersionIdMarker"] = vm
    r = s3.list_object_versions(**kw)
    pages += 1
    paged += [(v["Key"], v["VersionId"]) for v in r.get("Versions", [])]
    if not r.get("IsTruncated"):
        break
    km, vm = r.get("NextKeyMarker"), r.get("NextVersionIdMarker")
obs["page_paged"] = paged
obs["page_count"] = pages

# prefix + delimiter
s3.put_object(Bucket=B, Key="dir/a", Body=b"a")
s3.put_object(Bucket=B, Key="dir/b", Body=b"b")
r = s3.list_object_versions(Bucket=B, Prefix="", Delimiter="/")
obs["delimited_prefixes"] = [p["Prefix"] for p in r.get("CommonPrefixes", [])]

# DeleteObjects with version ids
s3.put_object(Bucket=B, Key="batch", Body=b"1")
bv = s3.put_object(Bucket=B, Key="batch", Body=b"2")["VersionId"]
dr = s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "batch", "VersionId": bv}]})
obs["batch"] = {"deleted": [(x["Key"], x.get("VersionId")) for x in dr.get("Deleted", [])], "current": body(Key="batch")}

# suspended: writes get the "null" version, which the next suspended write replaces
e1 = s3.put_object(Bucket=B, Key="s", Body=b"enabled")["VersionId"]
s3.put_bucket_versioning(Bucket=B, VersioningConfiguration={"Status": "Suspended"})
obs["state_suspended"] = s3.get_bucket_versioning(Bucket=B).get("Status")
n1 = s3.put_object(Bucket=B, Key="s", Body=b"null one").get("VersionId")
n2 = s3.put_object(Bucket=B, Key="s", Body=b"null two").get("VersionId")
obs["suspended"] = {"e1": e1, "n1": n1, "n2": n2, "list": versions("s"), "get_null": body(Key="s", VersionId="null"), "get_e1": body(Key="s", VersionId=e1)}
sd = s3.delete_object(Bucket=B, Key="s")
obs["suspended_delete"] = {"DeleteMarker": sd.get("DeleteMarker"), "VersionId": sd.get("VersionId"), "list": versions("s")}

json.dump(obs, open(out, "w"), indent=1, default=str)
