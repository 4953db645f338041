#!/usr/bin/env python3
"""Top functions of a Go CPU profile (nats-server's /debug/pprof/profile), with
no Go toolchain: the gzipped protobuf (profile.proto) is decoded by hand.

    python3 bench/pprof-top.py FILE.pb.gz [N] [--ops K]

Prints the profile's total CPU seconds, then the N functions with the most
self time and the N with the most cumulative time (a function counted once
per sample however deep it recurs). --ops K also divides by K (seconds per
operation)."""
import gzip
import sys
from collections import Counter


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of one message; value is an int or bytes."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield f, wt, v


def ints(wt, v):
    """A repeated integer field, packed (bytes) or not (int)."""
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    ops = 1
    if "--ops" in sys.argv:
        ops = int(sys.argv[sys.argv.index("--ops") + 1])
        args = [a for a in args if a != str(ops)]
    path, n = args[0], int(args[1]) if len(args) > 1 else 25
    data = gzip.decompress(open(path, "rb").read())
    strings, samples, locs, funcs, sample_types = [], [], {}, {}, []
    for f, wt, v in fields(data):
        if f == 1:
            st = dict((ff, vv) for ff, _, vv in fields(v))
            sample_types.append((st.get(1, 0), st.get(2, 0)))
        elif f == 2:
            loc_ids, values = [], []
            for ff, w2, vv in fields(v):
                if ff == 1:
                    loc_ids += ints(w2, vv)
                elif ff == 2:
                    values += ints(w2, vv)
            samples.append((loc_ids, values))
        elif f == 4:
            lid, fids = 0, []
            for ff, _, vv in fields(v):
                if ff == 1:
                    lid = vv
                elif ff == 4:  # Line: function_id = 1 (inlined frames first)
                    for f3, _, v3 in fields(vv):
                        if f3 == 1:
                            fids.append(v3)
            locs[lid] = fids
        elif f == 5:
            fid, name = 0, 0
            for ff, _, vv in fields(v):
                if ff == 1:
                    fid = vv
                elif ff == 2:
                    name = vv
            funcs[fid] = name
        elif f == 6:
            strings.append(v.decode("utf-8", "replace"))
    # the "cpu" / "nanoseconds" value (the second sample type of a Go CPU profile)
    vi = next((k for k, (t, u) in enumerate(sample_types) if strings[t] == "cpu"), len(sample_types) - 1)
    name = lambda fid: strings[funcs.get(fid, 0)] if funcs.get(fid, 0) < len(strings) else "?"
    self_t, cum_t, total = Counter(), Counter(), 0
    for loc_ids, values in samples:
        ns = values[vi]
        total += ns
        frames = [fid for lid in loc_ids for fid in locs.get(lid, [])]
        if frames:
            self_t[name(frames[0])] += ns
        for fn in set(name(fid) for fid in frames):
            cum_t[fn] += ns
    per = f" ({total / 1e9 / ops:.3f} s per op over {ops})" if ops > 1 else ""
    print(f"{path}: {total / 1e9:.2f} s of CPU sampled{per}")
    for title, c in (("self", self_t), ("cumulative", cum_t)):
        print(f"\n top {n} by {title} time:")
        for fn, ns in c.most_common(n):
            print(f"  {ns / 1e6:9.0f} ms {100 * ns / total:5.1f}%  {fn}")


if __name__ == "__main__":
    main()
