import test from "ava";
import { memoryCgroupOf, parseByteSize } from "../../src/engine/cgroup.ts";

test("parseByteSize reads bytes and binary units, and nothing else", (t) => {
  t.is(parseByteSize("1GiB"), 1024 ** 3);
  t.is(parseByteSize("512MiB"), 512 * 1024 ** 2);
  t.is(parseByteSize(" 64 KiB "), 64 * 1024);
  t.is(parseByteSize("1073741824"), 1073741824);
  t.is(parseByteSize("10B"), 10);
  for (const bad of ["", "0", "1GB", "1.5GiB", "-1MiB", "lots", "off", "1 gib", "99999999999999TiB"]) t.is(parseByteSize(bad), undefined, bad);
});

test("memoryCgroupOf finds the v1 memory hierarchy first, else the unified one", (t) => {
  const hybrid = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
  t.deepEqual(memoryCgroupOf(hybrid), { kind: "v1", path: "/process_api/abc" });
  t.deepEqual(memoryCgroupOf("5:cpu,memory:/a/b\n"), { kind: "v1", path: "/a/b" });
  t.deepEqual(memoryCgroupOf("0::/user.slice/user-1000.slice/session-2.scope\n"), { kind: "v2", path: "/user.slice/user-1000.slice/session-2.scope" });
  t.is(memoryCgroupOf("3:cpuset:/\n"), undefined);
  t.is(memoryCgroupOf(""), undefined);
});
