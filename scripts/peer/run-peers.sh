#!/usr/bin/env bash
# run-peers.sh — Shoal's S3 gateway side by side with Ceph radosgw on this machine
# (issue 19). Run by `npm run bench -- peer` (bench/peer.bench.ts), never by
# `npm test`. For each system: s3bench.py (boto3: 64 MiB PUT/GET, 4 KiB c16,
# 1 GiB multipart) and small.mjs (4 KiB c16 with presigned URLs over
# node:http: a client cheap enough not to be the limit).
#
#   run-peers.sh            radosgw (pool size 1) and Shoal R1 (one nats-server)
#                           in turns, $ROUNDS rounds (rgw, shoal, rgw, shoal, ...),
#                           then Shoal R3 (`dev --servers 3`, bucket made with
#                           `shoal mb --replicas 3`) $R3_RUNS times; then
#                           summary.py over the results.
#
# Everything started here is stopped here (trap on exit): Shoal by SIGINT to its
# node pid (it drains and stops its nats-servers; leftover children by pid),
# Ceph by `radosgw.sh stop` (pid files). The project checkout is only read.
#
# Environment (all optional):
#   SHOAL_MAIN   Shoal checkout             (the current directory)
#   NATS_BIN     nats-server binary          (unset: the one Shoal finds or installs)
#   PEER_OUT     results and logs            (/tmp/peerbench)
#   ROUNDS       rgw/shoal rounds            (2)
#   WARMUP       untimed rounds first        (1; their results go to
#                warmup.jsonl, not into the summary)
#   R3_RUNS      Shoal R3 runs               (2; 0 = skip)
#   SKIP_RGW=1   skip radosgw entirely (Shoal only)
#   BENCH_ARGS   extra s3bench.py arguments  (e.g. "--reps 3 --mpu-mib 256")
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MAIN=${SHOAL_MAIN:-$(cd "$HERE/../.." && pwd)}
NATS_BIN=${NATS_BIN:-}
OUT=${PEER_OUT:-/tmp/peerbench}
ROUNDS=${ROUNDS:-2}
WARMUP=${WARMUP:-1}
R3_RUNS=${R3_RUNS:-2}
SKIP_RGW=${SKIP_RGW:-0}
read -r -a BENCH_EXTRA <<<"${BENCH_ARGS:-}"
S3KEY=benchkey
S3SECRET=benchsecret0123456789abcd
RESULTS=$OUT/results.jsonl
mkdir -p "$OUT"

log() { printf '[run-peers %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# --- Shoal ------------------------------------------------------------------
# start_shoal NAME DATADIR [dev flags...]: sets SHOAL_S3, SHOAL_NATS, SHOAL_PID,
# SHOAL_NATS_PIDS (the nats-server children).
declare -A STARTED_SHOAL=()
start_shoal() {
  local name=$1 data=$2; shift 2
  rm -rf "$data"
  (
    cd "$MAIN"
    [ -n "$NATS_BIN" ] && export SHOAL_NATS_SERVER=$NATS_BIN
    SHOAL_ACCESS_KEY=$S3KEY SHOAL_SECRET_KEY=$S3SECRET \
      exec node bin/shoal.js dev --data "$data" --nats-port 0 --s3-port 0 "$@" \
      >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null
  ) &
  SHOAL_PID=$!
  echo "$SHOAL_PID" >"$OUT/$name.pid"
  STARTED_SHOAL[$name]="$SHOAL_PID $data"
  local i
  for i in $(seq 1 120); do
    grep -q '^S3: ' "$OUT/$name.out" 2>/dev/null && break
    [[ -d /proc/$SHOAL_PID ]] || { log "$name exited early"; tail -20 "$OUT/$name.err" >&2; return 1; }
    sleep 0.5
  done
  SHOAL_S3=$(sed -n 's/^S3: //p' "$OUT/$name.out")
  SHOAL_NATS=$(sed -n 's/^NATS: //p' "$OUT/$name.out")
  SHOAL_NATS_PIDS=$(pgrep -P "$SHOAL_PID" -f nats-server | tr '\n' ' ')
  echo "$SHOAL_NATS_PIDS" >"$OUT/$name.nats.pids"
  log "$name up: pid $SHOAL_PID, nats-server pids $SHOAL_NATS_PIDS, S3 $SHOAL_S3, NATS $SHOAL_NATS"
}

stop_shoal() {
  local name=$1
  [[ -n ${STARTED_SHOAL[$name]:-} ]] || return 0
  local pid data kids i
  read -r pid data <<<"${STARTED_SHOAL[$name]}"
  kids=$(cat "$OUT/$name.nats.pids" 2>/dev/null || true)
  if [[ -d /proc/$pid ]]; then
    log "stopping $name (SIGINT $pid)"
    kill -INT "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do [[ -d /proc/$pid ]] || break; sleep 0.5; done
    [[ -d /proc/$pid ]] && { log "$name still up; SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  for k in $kids; do
    if [[ -d /proc/$k ]] && grep -qF "$data" "/proc/$k/cmdline" 2>/dev/null; then
      log "leftover nats-server $k; SIGTERM"; kill -TERM "$k" 2>/dev/null || true
    fi
  done
  wait "$pid" 2>/dev/null || true
  rm -rf "$data"
  unset "STARTED_SHOAL[$name]"
}

# --- radosgw ----------------------------------------------------------------
RGW_STARTED=0
start_rgw() {
  local t0=$SECONDS
  "$HERE/radosgw.sh" start >"$OUT/rgw.env" 2>"$OUT/rgw-start.log"
  RGW_STARTED=1
  log "radosgw ready in $((SECONDS - t0)) s: $(cat "$OUT/rgw.env")"
  # shellcheck disable=SC1090
  . <(sed 's/ /\n/g' "$OUT/rgw.env")
  RGW_ENDPOINT=$ENDPOINT RGW_ACCESS=$ACCESS RGW_SECRET=$SECRET
  local d=${CEPH_PEER_DIR:-/tmp/peerbench-ceph}/run
  RGW_WATCH=(--watch "radosgw=$(cat "$d/client.rgw.a.pid")" --watch "osd=$(cat "$d/osd.0.pid")"
    --watch "mon=$(cat "$d/mon.a.pid")" --watch "mgr=$(cat "$d/mgr.x.pid")")
}
stop_rgw() {
  ((RGW_STARTED)) || return 0
  "$HERE/radosgw.sh" stop 2>>"$OUT/rgw-stop.log" || true
  RGW_STARTED=0
}

cleanup() {
  local n
  for n in "${!STARTED_SHOAL[@]}"; do stop_shoal "$n"; done
  stop_rgw
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bench LABEL ENDPOINT ACCESS SECRET [s3bench args...]
# The results file is $RESULTS unless BENCH_INTO names another (warm-up rounds).
bench() {
  local label=$1 ep=$2 ak=$3 sk=$4; shift 4
  local RESULTS=${BENCH_INTO:-$RESULTS}
  log "bench $label"
  if /usr/bin/python3 "$HERE/s3bench.py" "$ep" "$ak" "$sk" "$label" "$@" "${BENCH_EXTRA[@]}" \
    >>"$RESULTS" 2>"$OUT/${label//[^A-Za-z0-9_-]/_}.log"; then :; else
    log "s3bench $label exited $? (see $OUT/${label//[^A-Za-z0-9_-]/_}.log)"
  fi
  tail -n 1 "$RESULTS" | cut -c1-400 >&2
  # 4 KiB again with the cheap client (same system, same watched pids)
  local bkt=small-${label//[^a-z0-9]/-} watch=() a
  for a in "$@"; do [[ $a == *=* && $a != --* ]] && watch+=(--watch "$a"); done
  [[ " $* " == *" --reuse-bucket "* ]] && bkt=$(sed -n 's/.*--bucket \([^ ]*\).*/\1/p' <<<"$*")
  if node "$HERE/small.mjs" "$ep" "$ak" "$sk" "$bkt" "$label/node" --conc 16 "${watch[@]}" \
    >>"$RESULTS" 2>"$OUT/${label//[^A-Za-z0-9_-]/_}-small.log"; then :; else
    log "small.mjs $label exited $?"
  fi
  tail -n 1 "$RESULTS" | cut -c1-400 >&2
}

# --- the runs ---------------------------------------------------------------
{
  echo "# $(date -u +%FT%TZ) run-peers.sh"
  echo "# ceph: $(ceph --version 2>/dev/null || echo 'not installed yet')"
  echo "# nats-server: $([ -n "$NATS_BIN" ] && $NATS_BIN --version || echo "Shoal's own")"
  echo "# node: $(node --version)"
  echo "# python3-boto3: $(/usr/bin/python3 -c 'import boto3,botocore; print(boto3.__version__, botocore.__version__)')"
  echo "# shoal: $(git -C "$MAIN" log -1 --format='%h %s' | cut -c1-100)"
} >>"$OUT/versions.txt"

((SKIP_RGW)) || start_rgw
start_shoal shoal-r1 /tmp/peerbench-shoal
R1_WATCH=(--watch "node=$SHOAL_PID")
i=0; for p in $SHOAL_NATS_PIDS; do R1_WATCH+=(--watch "nats$i=$p"); i=$((i + 1)); done
R1_S3=$SHOAL_S3

# Warm-up: every process's first minutes after start cost it up to twice the
# CPU per operation of later rounds (measured 2026-12-03 for radosgw, Shoal
# and even the boto3 client: docs/benchmarks.md); untimed for both systems.
for r in $(seq 1 "$WARMUP"); do
  ((SKIP_RGW)) || BENCH_INTO=$OUT/warmup.jsonl bench "warmup-radosgw#$r" "$RGW_ENDPOINT" "$RGW_ACCESS" "$RGW_SECRET" "${RGW_WATCH[@]}"
  BENCH_INTO=$OUT/warmup.jsonl bench "warmup-shoal-r1#$r" "$R1_S3" "$S3KEY" "$S3SECRET" "${R1_WATCH[@]}"
done

for r in $(seq 1 "$ROUNDS"); do
  ((SKIP_RGW)) || bench "radosgw#$r" "$RGW_ENDPOINT" "$RGW_ACCESS" "$RGW_SECRET" "${RGW_WATCH[@]}"
  bench "shoal-r1#$r" "$R1_S3" "$S3KEY" "$S3SECRET" "${R1_WATCH[@]}"
done
stop_shoal shoal-r1
stop_rgw

if ((R3_RUNS > 0)); then
  start_shoal shoal-r3 /tmp/peerbench-shoal-r3 --servers 3
  R3_WATCH=(--watch "node=$SHOAL_PID")
  i=0; for p in $SHOAL_NATS_PIDS; do R3_WATCH+=(--watch "nats$i=$p"); i=$((i + 1)); done
  for r in $(seq 1 "$WARMUP"); do
    (cd "$MAIN" && npx shoal mb "benchr3-w$r" --replicas 3 --nats "$SHOAL_NATS") >&2
    BENCH_INTO=$OUT/warmup.jsonl bench "warmup-shoal-r3#$r" "$SHOAL_S3" "$S3KEY" "$S3SECRET" --bucket "benchr3-w$r" --reuse-bucket "${R3_WATCH[@]}"
  done
  for r in $(seq 1 "$R3_RUNS"); do
    b=benchr3-$r
    (cd "$MAIN" && npx shoal mb "$b" --replicas 3 --nats "$SHOAL_NATS") >&2
    bench "shoal-r3#$r" "$SHOAL_S3" "$S3KEY" "$S3SECRET" --bucket "$b" --reuse-bucket "${R3_WATCH[@]}"
  done
  stop_shoal shoal-r3
fi

# The machine, with what moves these figures most on a VM: free page reporting hands freed
# guest memory back to the host, and a file store writing through the page cache (nats-server)
# then pays system time for every fresh page; radosgw's BlueStore (O_DIRECT) does not
# (docs/benchmarks.md, "the page cache on this VM")
reporting=none
[ -r /sys/module/page_reporting/parameters/page_reporting_order ] && reporting="on, order $(cat /sys/module/page_reporting/parameters/page_reporting_order)"
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo) GiB, kernel $(uname -r), free page reporting: $reporting, load average $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$HERE/summary.py" "$RESULTS"
