/**
 * A memory cgroup for each nats-server Shoal starts, so that the server's
 * page cache is bounded and the kernel recycles the pages of blocks written
 * long ago instead of taking fresh ones from the free list for every write.
 *
 * Why: on a virtual machine whose balloon reports free pages to the host
 * (free page reporting), a page taken from the free list must be faulted in
 * again by the host. Writing 1 GiB into a new file cost 2.9–3.3 s of CPU on
 * the 2-core VM Shoal is measured on, and 0.37–0.40 s in a cgroup of 256 MiB
 * (`dd` of 1 GiB plus `sync`, busy time of the whole machine). nats-server
 * writes every stored byte through the page cache, so that was most of its
 * CPU: a 64 MiB PUT through the gateway cost it 3.7–4.0 s per GiB outside a
 * cgroup and 1.7–1.8 s in one of 1 GiB (docs/benchmarks.md, "The server's
 * page cache"). The data still reaches the disk as before; only the pages
 * that hold it are reused.
 *
 * The cgroup is a child of Shoal's own memory cgroup, named
 * `shoal-nats.<pid>`: cgroup v1's memory controller (`memory.limit_in_bytes`)
 * or, on cgroup v2, `memory.high` (reclaim above it, never an OOM kill),
 * when the memory controller is delegated to Shoal's cgroup. Where neither
 * can be written (no permission, not Linux, the controller not delegated),
 * the server runs as before and the reason is reported. The limit holds the
 * server's heap and its page cache: it is kept well above the Go runtime's
 * soft limit (server.ts SERVER_MEMORY_LIMIT).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The memory cgroup limit for the servers Shoal starts (`off`: none). */
export const SERVER_CGROUP_MEMORY = "1GiB";

const ROOT = "/sys/fs/cgroup";
const PREFIX = "shoal-nats.";

export type CgroupPlacement = { dir: string; kind: "v1" | "v2"; limitBytes: number } | { reason: string };

/** Bytes of a size such as `1GiB`, `512MiB`, `64KiB` or `1073741824`; undefined when it is not one. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+)\s*(|B|KiB|MiB|GiB|TiB)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = { "": 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[m[2]!]!;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The memory cgroup a process is in, from its `/proc/<pid>/cgroup`: the v1
 * memory hierarchy's path when there is one, else the unified (v2) path.
 */
export function memoryCgroupOf(procCgroup: string): { kind: "v1" | "v2"; path: string } | undefined {
  let unified: string | undefined;
  for (const line of procCgroup.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[2]!.split(",").includes("memory")) return { kind: "v1", path: m[3]! };
    if (m[1] === "0" && m[2] === "") unified = m[3]!;
  }
  return unified === undefined ? undefined : { kind: "v2", path: unified };
}

/** The directory of Shoal's own memory cgroup, where server cgroups are made; or why there is none. */
function parentCgroup(): { dir: string; kind: "v1" | "v2" } | { reason: string } {
  if (process.platform !== "linux") return { reason: `cgroups are Linux's (this is ${process.platform})` };
  let own;
  try {
    own = memoryCgroupOf(readFileSync("/proc/self/cgroup", "utf8"));
  } catch (e) {
    return { reason: `/proc/self/cgroup cannot be read (${(e as Error).message})` };
  }
  if (!own) return { reason: "no memory cgroup in /proc/self/cgroup" };
  if (own.kind === "v1") {
    const dir = join(ROOT, "memory", own.path);
    return existsSync(join(dir, "memory.limit_in_bytes")) ? { dir, kind: "v1" } : { reason: `cgroup v1 memory hierarchy not mounted at ${join(ROOT, "memory")}` };
  }
  const dir = join(ROOT, own.path);
  let control = "";
  try {
    control = readFileSync(join(dir, "cgroup.subtree_control"), "utf8");
  } catch (e) {
    return { reason: `${join(dir, "cgroup.subtree_control")} cannot be read (${(e as Error).message})` };
  }
  if (!control.split(/\s+/).includes("memory")) return { reason: `the memory controller is not delegated to Shoal's cgroup ${own.path} (cgroup.subtree_control: "${control.trim()}")` };
  return { dir, kind: "v2" };
}

/**
 * Moves process `pid` into a new memory cgroup of `limitBytes` (see the
 * header). Never throws: a placement that cannot be made is reported with
 * its reason, and the process runs where it is.
 */
export function placeInMemoryCgroup(pid: number, limitBytes: number): CgroupPlacement {
  const parent = parentCgroup();
  if ("reason" in parent) return parent;
  reapCgroups(parent.dir);
  const dir = join(parent.dir, `${PREFIX}${pid}`);
  try {
    mkdirSync(dir);
  } catch (e) {
    return { reason: `cannot create ${dir} (${(e as Error).message})` };
  }
  try {
    writeFileSync(join(dir, parent.kind === "v1" ? "memory.limit_in_bytes" : "memory.high"), String(limitBytes));
    writeFileSync(join(dir, "cgroup.procs"), String(pid));
    return { dir, kind: parent.kind, limitBytes };
  } catch (e) {
    releaseCgroup(dir);
    return { reason: `cannot place the server in ${dir} (${(e as Error).message})` };
  }
}

/**
 * How many processes the kernel's OOM killer killed in a server's cgroup
 * (`oom_kill` of v1's memory.oom_control, kernels ≥ 4.13, or of v2's
 * memory.events); undefined where it is not counted.
 */
export function oomKills(dir: string): number | undefined {
  for (const f of ["memory.oom_control", "memory.events"]) {
    try {
      const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(dir, f), "utf8"));
      if (m) return Number(m[1]);
    } catch {
      // not this version's file
    }
  }
  return undefined;
}

/** Removes a server's cgroup once its process is gone (a cgroup with a process in it stays). */
export function releaseCgroup(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Removes the empty server cgroups left by servers that were killed with the process that started them. */
export function reapCgroups(parentDir: string): void {
  let names: string[];
  try {
    names = readdirSync(parentDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    // Only a dead server's: another process may have made a live server's
    // cgroup a moment ago and not yet moved the server into it.
    const pid = Number(name.slice(PREFIX.length));
    if (Number.isSafeInteger(pid) && pid > 0 && alive(pid)) continue;
    const dir = join(parentDir, name);
    try {
      if (readFileSync(join(dir, "cgroup.procs"), "utf8").trim() === "") releaseCgroup(dir);
    } catch {
      // gone meanwhile
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One line on where a server's memory cgroup is, for `shoal dev`'s output. */
export function describeCgroup(name: string, p: CgroupPlacement | undefined): string {
  if (!p) return `nats-server ${name}: no memory cgroup (the process has no pid)`;
  if ("reason" in p) return `nats-server ${name}: no memory cgroup of its own, page cache unbounded (${p.reason})`;
  return `nats-server ${name}: heap and page cache bounded at ${p.limitBytes / 1024 ** 2} MiB (cgroup ${p.kind} ${p.dir}; SHOAL_SERVER_CGROUP_MEMORY sets it, off turns it off)`;
}
