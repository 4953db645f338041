#!/usr/bin/python3
"""summary.py RESULTS.jsonl [BASE] — table of s3bench.py runs, per-system
medians, and ratios of every system to BASE (default "radosgw").

A system is the part of a run's label before '#' (radosgw#1 -> radosgw).
Lines that are not JSON objects (comments) are skipped.
"""
import json
import statistics
import sys

COLS = [("put64_MBps", "PUT 64M MB/s"), ("get64_MBps", "GET 64M MB/s"), ("put4k_ops", "PUT 4K ops/s"),
        ("get4k_ops", "GET 4K ops/s"), ("mpu_MBps", "MPU 1G MB/s")]
# Main process per system for the RSS column (peak during the 64 MiB phases).
MAIN_PROC = {"radosgw": ["radosgw", "osd"], "shoal": ["node", "nats0", "nats1", "nats2"]}


def main():
    path = sys.argv[1]
    base = sys.argv[2] if len(sys.argv) > 2 else "radosgw"
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    runs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    if not runs:
        print("no runs")
        return
    def system(label):
        # "radosgw#2" -> "radosgw"; small.mjs runs ("radosgw#2/node") are their own system
        return label.split("#")[0] + (" (node client)" if label.endswith("/node") else "")

    systems = {}
    for r in runs:
        systems.setdefault(system(r["label"]), []).append(r)

    def fmt(v):
        return "—" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")

    head = "| run | " + " | ".join(h for _, h in COLS) + " | peak RSS in 64M phases (MiB) |"
    print(head)
    print("|" + "---|" * (len(COLS) + 2))
    for r in runs:
        rss = r.get("rss_peak_MiB", {})
        peaks = {}
        for ph in ("put64", "get64"):
            for n, v in rss.get(ph, {}).items():
                peaks[n] = max(peaks.get(n, 0), v)
        sysname = r["label"].split("#")[0]
        want = MAIN_PROC["radosgw" if sysname.startswith("radosgw") else "shoal"]
        rs = ", ".join(f"{n} {peaks[n]:.0f}" for n in want if n in peaks)
        fail = " (failed: " + "; ".join(r["failed"]) + ")" if r.get("failed") else ""
        print(f"| {r['label']} | " + " | ".join(fmt(r.get(k)) for k, _ in COLS) + f" | {rs}{fail} |")

    # Server CPU per operation: every watched process but the client, summed, over the
    # phase's operations (64 MiB phases: warm-up + reps; 4 KiB: the timed ops; multipart: per GiB)
    print()
    print("Server CPU per operation (all watched server processes; s per 64 MiB op, ms per 4 KiB op, s per GiB of multipart, also with the work the servers did after the upload answered, until they were idle), client CPU in brackets; nats-server peak RSS during multipart:")
    print("| run | PUT 64M | GET 64M | PUT 4K | GET 4K | MPU | MPU + work after it (until idle) | peak RSS in MPU (and after it) (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    sys_rows = []
    for r in runs:
        cpu = r.get("cpu_s", {})
        reps = len(r.get("put64_runs") or []) + 1

        def per(phase, n, scale=1.0):
            c = cpu.get(phase)
            if not c or not n:
                return "—"
            server = sum(v for k, v in c.items() if k != "client" and not k.endswith(".sys"))
            return f"{server / n * scale:.2f} [{c.get('client', 0) / n * scale:.2f}]"

        def sys_of(phase, n):
            c = cpu.get(phase)
            if not c or not n:
                return "—"
            return ", ".join(f"{k[:-4]} {v / n:.2f}" for k, v in c.items() if k.endswith(".sys") and not k.startswith("client")) or "—"

        ops4 = r.get("small_ops") or (2000 if "put4k_ops" in r else None)
        mpu_gib = (r.get("mpu_mib") or 1024) / 1024
        rss = r.get("rss_peak_MiB", {}).get("mpu", {})
        rss_after = r.get("rss_peak_MiB", {}).get("mpu-after", {})
        rs = ", ".join(f"{n} {v:.0f}" + (f" ({rss_after[n]:.0f} after)" if n in rss_after else "") for n, v in rss.items() if n != "client")
        after = cpu.get("mpu-after")
        with_after = "—"
        if cpu.get("mpu") and after is not None:
            both = {k: cpu["mpu"].get(k, 0) + after.get(k, 0) for k in set(cpu["mpu"]) | set(after)}
            server = sum(v for k, v in both.items() if k != "client" and not k.endswith(".sys"))
            with_after = f"{server / mpu_gib:.2f} ({r.get('mpu_after_s', '?')} s after)"
        print(f"| {r['label']} | {per('put64', reps)} | {per('get64', reps)} | {per('put4k', ops4, 1000)} | {per('get4k', ops4, 1000)} | {per('mpu', mpu_gib)} | {with_after} | {rs or '—'} |")
        sys_rows.append(f"| {r['label']} | {sys_of('put64', reps)} | {sys_of('get64', reps)} | {sys_of('mpu', mpu_gib)} |")

    print()
    print("System (kernel) time within it, per 64 MiB op, per process:")
    print("| run | PUT 64M | GET 64M | MPU (per GiB) |")
    print("|---|---|---|---|")
    print("\n".join(sys_rows))

    print()
    print("Medians per system (4K columns of the node-client rows: scripts/peer/small.mjs):")
    med = {}
    for s, rs in systems.items():
        med[s] = {}
        for k, _ in COLS:
            vals = [r[k] for r in rs if r.get(k) is not None]
            med[s][k] = statistics.median(vals) if vals else None
        print(f"| {s} (n={len(rs)}) | " + " | ".join(fmt(med[s][k]) for k, _ in COLS) + " |")
    for suffix in ("", " (node client)"):
        b = base + suffix
        if b not in med:
            continue
        print()
        print(f"Ratios to {b} (medians):")
        for s in med:
            if s == b or not s.endswith(suffix) or (not suffix and s.endswith(" (node client)")):
                continue
            cells = []
            for k, _ in COLS:
                x, y = med[s][k], med[b][k]
                cells.append("—" if x is None or not y else f"{x / y:.2f}")
            print(f"| {s} / {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
