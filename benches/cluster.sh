#!/usr/bin/env bash
# Cluster ingest benchmark (issue #10): the same remote-write payloads, in one run, against
#   - Strata RF=3: deploy/local/cluster.sh (2 distributors, 3 ingesters, ...), load spread
#     round-robin over the 2 distributors;
#   - Strata RF=1: the same cluster with ingester.ring.replication_factor: 1;
#   - VictoriaMetrics ×3: three single-node victoria-metrics 1.79 processes (the Debian package
#     has no cluster binaries), every request sent to all three and acknowledged by the load
#     generator once 2 of them answered 2xx (ingest-bench --mode quorum --quorum 2).
# Then a fixed query set over one hour of data (query-bench's data set and queries) against the
# RF=3 querier and against one VictoriaMetrics node. Prints a table and the ratios RF3/VM×3 and
# RF3/RF1.
#
#   benches/cluster.sh [--series N] [--rounds N] [--targets rf3,rf1,vm] [--repeat N] [--out DIR]
#                      [--query-scale N] [--no-queries] [--perf] [--no-build] ...
# See --help. Everything listens on loopback only (127.0.0.x), every step has a time limit, and
# every process is stopped by its pid.
set -euo pipefail
# One compound command, read before anything runs: editing the file during a run cannot change
# what that run does.
{

SERIES=100000
ROUNDS=60
SHARDS=16
MAX_SAMPLES=2000
TARGETS="rf3,rf1,vm"
REPEAT=1
RETRIES=2
QUERIES=1
QUERY_SCALE=20000
QUERY_POINTS=280
QUERY_RUNS=20
QUERY_WARMUP=2
SKIP=""
HTTP_PORT=18080
GRPC_PORT=19195
AM_GRPC_PORT=19194
VM_PORT_BASE=19610
SETTLE=5
MAX_RUN=600
READY_TIMEOUT=180
WAIT_OTHERS=900
SETTLE_MAX=300
PERF=0
OUT=""
BUILD=1
KEEP_DATA=0
ORIG_ARGS="$*"

usage() {
    cat <<EOF
usage: $0 [options]
  --series N                active series (default $SERIES)
  --rounds N                scrape rounds, 15 s apart (default $ROUNDS)
  --shards N                remote-write shards = concurrent requests (default $SHARDS)
  --max-samples-per-send N  samples per request (default $MAX_SAMPLES)
  --targets LIST            comma-separated: rf3, rf1, vm (default $TARGETS)
  --repeat N                run the targets N times, interleaved; the table shows medians (default $REPEAT)
  --retries N               run a target again (fresh) when other processes used >10% of a core during
                            its run, up to N times (default $RETRIES)
  --no-queries              skip the query part
  --query-scale N           series per query metric (query-bench --scale; default $QUERY_SCALE, 3 metrics)
  --query-points N          samples per series, 15 s apart (default $QUERY_POINTS: the hour queried plus
                            the 10 min lookback of its first step)
  --query-runs N            timed runs per query (default $QUERY_RUNS); --query-warmup N (default $QUERY_WARMUP)
  --skip LIST               cluster.sh STRATA_SKIP: instances or components not started (e.g.
                            alertmanager,compactor; default: none)
  --http-port N             cluster HTTP port on every 127.0.0.x (default $HTTP_PORT); --grpc-port N
                            (default $GRPC_PORT); --am-grpc-port N (default $AM_GRPC_PORT)
  --vm-port-base N          VictoriaMetrics on 127.0.0.1:N..N+2 (default $VM_PORT_BASE)
  --perf                    after the measured runs, one more RF=3 run with perf record on
                            distributor-1 and ingester-1 (not in the table)
  --wait-others SECS        wait up to SECS for builds and other benchmarks to stop (default $WAIT_OTHERS)
  --max-run-secs SECS       time limit for posting to one target (default $MAX_RUN)
  --out DIR                 results directory (default: a new dir under \${TMPDIR:-/tmp})
  --no-build                use the binaries already in \$CARGO_TARGET_DIR/release
  --keep-data               keep the data dirs in the results dir
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --series) SERIES="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --shards) SHARDS="$2"; shift 2 ;;
        --max-samples-per-send) MAX_SAMPLES="$2"; shift 2 ;;
        --targets) TARGETS="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --retries) RETRIES="$2"; shift 2 ;;
        --no-queries) QUERIES=0; shift ;;
        --query-scale) QUERY_SCALE="$2"; shift 2 ;;
        --query-points) QUERY_POINTS="$2"; shift 2 ;;
        --query-runs) QUERY_RUNS="$2"; shift 2 ;;
        --query-warmup) QUERY_WARMUP="$2"; shift 2 ;;
        --skip) SKIP="$2"; shift 2 ;;
        --http-port) HTTP_PORT="$2"; shift 2 ;;
        --grpc-port) GRPC_PORT="$2"; shift 2 ;;
        --am-grpc-port) AM_GRPC_PORT="$2"; shift 2 ;;
        --vm-port-base) VM_PORT_BASE="$2"; shift 2 ;;
        --perf) PERF=1; shift ;;
        --wait-others) WAIT_OTHERS="$2"; shift 2 ;;
        --max-run-secs) MAX_RUN="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --keep-data) KEEP_DATA=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
CLUSTER_SH="$ROOT/deploy/local/cluster.sh"

declare -a WANT=()
IFS=',' read -r -a _targets <<<"$TARGETS"
for t in "${_targets[@]}"; do
    case "$t" in
        rf3|strata-rf3) WANT+=(rf3) ;;
        rf1|strata-rf1) WANT+=(rf1) ;;
        vm|vm-x3|victoriametrics) WANT+=(vm) ;;
        "") ;;
        *) echo "unknown target: $t (rf3, rf1, vm)" >&2; exit 2 ;;
    esac
done
wants() { local x; for x in "${WANT[@]}"; do [[ "$x" == "$1" ]] && return 0; done; return 1; }

[[ -n "$OUT" ]] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-cluster-bench.XXXXXX")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-cluster-work.XXXXXX")"
NOTES="$OUT/notes.txt"
RESULTS="$OUT/results.jsonl"
TIMINGS="$OUT/timings.jsonl"
touch "$NOTES" "$RESULTS" "$TIMINGS" "$OUT/load.jsonl" "$OUT/verify.jsonl"

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

# What is running now, for the cleanup: a cluster dir, VictoriaMetrics pids, a perf pid.
CLUSTER_DIR=""
VM_PIDS=()
PERF_PID=""
TARGET_PID=""
TARGET_PIDS=""
cleanup() {
    # A second signal must not cut the cleanup short.
    trap '' INT TERM
    if [[ -n "$PERF_PID" ]] && kill -0 "$PERF_PID" 2>/dev/null; then kill -INT "$PERF_PID" 2>/dev/null || true; fi
    if [[ -n "$CLUSTER_DIR" ]]; then cluster_down "$CLUSTER_DIR" || true; fi
    local p
    for p in "${VM_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && { kill -TERM "$p" 2>/dev/null || true; }
    done
    sleep 1
    for p in "${VM_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && { kill -KILL "$p" 2>/dev/null || true; }
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- machine, peers, build
ensure_pkg() { # binary package
    if [[ ! -x "$1" ]]; then
        log "$1 missing: installing Debian package $2"
        timeout 600 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$2" >/dev/null
    fi
}
wants vm && ensure_pkg /usr/bin/victoria-metrics victoria-metrics
if wants rf3 || wants rf1; then
    python3 -c 'import yaml' 2>/dev/null || ensure_pkg /usr/lib/python3/dist-packages/yaml/__init__.py python3-yaml
fi
machine_info "$ROOT" "$0 $ORIG_ARGS" >"$OUT/machine.txt"

if [[ "$BUILD" == 1 ]]; then
    log "cargo build --release -p strata -p strata-benches"
    (cd "$ROOT" && timeout 3600 cargo build --release -p strata -p strata-benches 2>"$OUT/build.log") \
        || { tail -30 "$OUT/build.log" >&2; exit 1; }
fi
# Run copies: a rebuild by someone else during the run does not change what is measured.
for b in strata ingest-bench query-bench; do
    [[ -x "$CARGO_TARGET_DIR/release/$b" ]] || { echo "missing $CARGO_TARGET_DIR/release/$b" >&2; exit 1; }
    cp "$CARGO_TARGET_DIR/release/$b" "$WORK/$b"
done
STRATA_BIN="$WORK/strata"
BENCH="$WORK/ingest-bench"
QBENCH="$WORK/query-bench"
# The shared target dir is used by several checkouts: say which one the binary came from (its
# line tables name the directory it was compiled in).
{
    echo "strata binary: $CARGO_TARGET_DIR/release/strata, built $(date -u -r "$CARGO_TARGET_DIR/release/strata" +%FT%TZ), sha256 $(sha256sum "$STRATA_BIN" | cut -c1-16)"
    echo "strata binary compiled in: $(grep -a -o -E '/work/[A-Za-z0-9._-]+' "$STRATA_BIN" | sort -u | tr '\n' ' ' || true)($(grep -a -q -F "$ROOT" "$STRATA_BIN" && echo "mentions" || echo "does NOT mention") this checkout, $ROOT)"
    echo "machine memory in use before the run: $(free -m | awk '/Mem:/ {print $3 " MiB"}')"
} >>"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- helpers
# Builds running (rustc) or other benchmarks busy: not a time to measure.
wait_no_builds() { # what
    local start=$SECONDS
    while pgrep -x rustc >/dev/null 2>&1; do
        if (( SECONDS - start >= WAIT_OTHERS )); then
            note "$1: a compiler was still running after ${WAIT_OTHERS}s; going on (the run may be marked disturbed)"
            return 0
        fi
        log "waiting before $1: a build is running"
        sleep 10
    done
}
quiet() { # what
    wait_no_builds "$1"
    wait_quiet "$1"
}

CLUSTER_ENV=()
cluster_env() { # rf
    local extra="$WORK/extra-rf$1.yaml"
    cat >"$extra" <<EOF
ingester:
  ring:
    replication_factor: $1
querier:
  max_samples: 1000000000
  query_timeout: 10m
EOF
    CLUSTER_ENV=(STRATA_BIN="$STRATA_BIN" STRATA_HTTP_PORT="$HTTP_PORT" STRATA_GRPC_PORT="$GRPC_PORT"
        STRATA_AM_GRPC_PORT="$AM_GRPC_PORT" STRATA_EXTRA_CONFIG="$extra" STRATA_SKIP="$SKIP")
}

cluster_down() { # dir
    local dir="$1" pids p
    pids=$(jq -r '.instances[] | select(.pid != null) | .pid' "$dir/instances.json" 2>/dev/null || true)
    env "${CLUSTER_ENV[@]}" timeout 120 "$CLUSTER_SH" down "$dir" >/dev/null 2>&1 || true
    # cluster.sh sends SIGKILL after 15 s without waiting for the processes to vanish.
    local i
    for i in $(seq 1 100); do
        local alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        (( alive )) || break
        sleep 0.1
    done
    for p in $pids; do
        if kill -0 "$p" 2>/dev/null; then
            note "cluster process $p still alive after cluster.sh down: SIGKILL"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    CLUSTER_DIR=""
}

# Names and pids of the cluster's processes: "name component pid http" lines.
instances() { jq -r '.instances[] | select(.pid != null) | "\(.name) \(.component) \(.pid) \(.http)"' "$1/instances.json"; }

# Until every distributor sees every ingester ACTIVE and healthy with the expected RF.
wait_ring() { # dir rf
    local deadline=$((SECONDS + READY_TIMEOUT)) n c p http ok
    while (( SECONDS < deadline )); do
        ok=1
        while read -r n c p http; do
            [[ "$c" == distributor ]] || continue
            curl -sf --max-time 5 -H 'Accept: application/json' "$http/ingester/ring" \
                | jq -e --argjson rf "$2" '.replication_factor == $rf
                    and ([.instances[] | select(.state == "ACTIVE" and .healthy)] | length) == 3' \
                    >/dev/null 2>&1 || ok=0
        done < <(instances "$1")
        (( ok )) && return 0
        sleep 0.5
    done
    note "the distributors did not see 3 ACTIVE ingesters with RF $2 within ${READY_TIMEOUT}s"
    return 1
}

metric_sum() { # url metric: sum of a metric's samples on a /metrics page
    curl -s --max-time 30 "$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $2} END {printf "%d", s}'
}

promql() { # base query time [extra param]
    curl -s --max-time 120 -G "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$3" \
        ${4:+--data-urlencode "$4"} | jq -r '.data.result[0].value[1] // "n/a"' 2>/dev/null || echo n/a
}

PAYLOADS_BUILT=0
build_payloads() {
    PAYLOADS_BUILT=$SECONDS
    log "building payloads: $SERIES series, $ROUNDS rounds, $SHARDS shards, $MAX_SAMPLES samples/request"
    timeout 900 "$BENCH" --series "$SERIES" --rounds "$ROUNDS" --shards "$SHARDS" --max-samples-per-send "$MAX_SAMPLES" \
        --save-payloads "$WORK/payloads.bin" 2>&1 | tee -a "$OUT/payloads.log" >&2
}
# Payloads whose oldest samples would be more than ~57 minutes old when sent are rebuilt.
ensure_fresh_payloads() {
    if (( SECONDS - PAYLOADS_BUILT + ROUNDS * 15 + 60 + 180 > 57 * 60 )); then
        log "payloads too old: rebuilding them"
        build_payloads
    fi
}

LAST_DISTURBED=false
post() { # name log-file ingest-bench-args...: posts the payloads, sets LAST_DISTURBED
    local name="$1" log="$2" rc=0
    shift 2
    ensure_fresh_payloads
    timeout $((MAX_RUN + SETTLE + 300)) "$BENCH" --payloads "$WORK/payloads.bin" --target "$name" \
        --settle-secs "$SETTLE" --max-run-secs "$MAX_RUN" "$@" >"$WORK/bench.txt" 2>&1 || rc=$?
    cat "$WORK/bench.txt" >>"$log"
    grep -v '^{' "$WORK/bench.txt" >&2 || true
    LAST_DISTURBED=$(grep '^{' "$WORK/bench.txt" | tail -1 | jq -r '.disturbed // false' 2>/dev/null || echo false)
    if [[ "$rc" == 3 ]]; then
        note "$name: some requests failed or were skipped (see $log)"
    elif [[ "$rc" != 0 ]]; then
        note "$name: ingest-bench exited with $rc"
    fi
    LAST_TS=$(grep '^{' "$WORK/bench.txt" | tail -1 | jq -r '.last_ts_ms // 0' 2>/dev/null || echo 0)
    # Only undisturbed runs and the last attempt go to the results.
    if [[ "$LAST_DISTURBED" != true || "${LAST_ATTEMPT:-0}" == 1 ]]; then
        grep '^{' "$WORK/bench.txt" | tail -1 >>"$RESULTS" || true
    else
        grep '^{' "$WORK/bench.txt" | tail -1 >>"$OUT/disturbed.jsonl" || true
    fi
}

QUERY_END_MS=""

# Loads query-bench's data set through PUSH, reads it back at BASE, times the queries at BASE.
# PIDS (space-separated) are every process of the system under test: their CPU is the
# target's, not a disturbance (a querier's ingesters work for its queries).
run_queries() { # target push base pids
    local target="$1" push="$2" base="$3" pids="$4" rc=0 ids attempt p
    [[ -n "$QUERY_END_MS" ]] || QUERY_END_MS=$("$QBENCH" end-ms)
    local -a data=(--scale "$QUERY_SCALE" --points "$QUERY_POINTS" --end-ms "$QUERY_END_MS")
    log "$target: loading the query data set ($QUERY_SCALE series x 3 metrics x $QUERY_POINTS points)"
    timeout 1800 "$QBENCH" load "${data[@]}" --url "$push" --target "$target" --shards 8 --batch-samples 20000 \
        --max-run-secs 1500 --json-out "$OUT/load.jsonl" 2> >(tee -a "$OUT/load.log" >&2) >/dev/null || rc=$?
    [[ "$rc" == 0 ]] || note "$target: query data load exited with $rc"
    if [[ "$target" == victoriametrics ]]; then
        curl -s -o /dev/null --max-time 120 "$base/internal/force_flush" || true
        sleep 5
    fi
    rc=0
    timeout 900 "$QBENCH" verify "${data[@]}" --base "$base" --target "$target" --json-out "$OUT/verify.jsonl" \
        >/dev/null 2>>"$OUT/load.log" || rc=$?
    [[ "$rc" == 0 ]] || note "$target: query data read-back differs or failed (rc $rc, see verify.jsonl)"
    quiet "$target queries"
    log "$target: timing the queries ($QUERY_WARMUP warm-up + $QUERY_RUNS runs each, 1 h range, 60 s step)"
    local -a tq=("${data[@]}" --base "$base" --target "$target" --warmup "$QUERY_WARMUP"
        --runs "$QUERY_RUNS" --range-hours 1 --step-secs 60 --answers "$OUT/answers")
    for p in $pids; do tq+=(--pid "$p"); done
    timeout 1800 "$QBENCH" time "${tq[@]}" --json-out "$TIMINGS" >/dev/null 2>>"$OUT/load.log" \
        || note "$target: query timing exited with an error"
    for ((attempt = 0; ; attempt++)); do
        ids=$(jq -rs --arg t "$target" '[.[] | select(.target == $t)] | group_by(.query_id)
            | map(last | select(.disturbed) | .query_id) | join(",")' "$TIMINGS")
        [[ -n "$ids" ]] || break
        if (( attempt >= RETRIES )); then
            note "$target: queries $ids still disturbed after $RETRIES retries"
            break
        fi
        log "$target: queries $ids disturbed; timing them again"
        quiet "$target queries again"
        timeout 1800 "$QBENCH" time "${tq[@]}" --only "$ids" --json-out "$TIMINGS" >/dev/null 2>>"$OUT/load.log" || true
    done
}

# ---------------------------------------------------------------- targets
run_strata() { # rf rep attempt-is-last
    local rf="$1" rep="$2" name="strata-rf$1" dir="$WORK/cluster-rf$1" n c p http
    rm -rf "$dir" && mkdir -p "$dir"
    cluster_env "$rf"
    quiet "$name start"
    log "$name: starting the cluster (${SKIP:+without $SKIP, }HTTP :$HTTP_PORT, gRPC :$GRPC_PORT)"
    CLUSTER_DIR="$dir"
    if ! env "${CLUSTER_ENV[@]}" timeout "$READY_TIMEOUT" "$CLUSTER_SH" up "$dir" >"$dir/instances.json" 2>"$OUT/$name-up.log"; then
        note "$name: cluster.sh up failed (see $OUT/$name-up.log)"
        cluster_down "$dir"
        return 0
    fi
    cp "$dir/instances.json" "$OUT/$name-instances.json"
    wait_ring "$dir" "$rf" || { cluster_down "$dir"; return 0; }
    local -a args=() pids=()
    local querier="" d1=""
    while read -r n c p http; do
        pids+=("$p")
        case "$c" in
            ingester) args+=(--pid "$n=$p") ;;
            distributor) args+=(--pid "$n=$p" --url "$http/api/v1/push"); [[ -n "$d1" ]] || d1="$http" ;;
            querier) querier="$http"; args+=(--aux-pid "$n=$p") ;;
            *) args+=(--aux-pid "$n=$p") ;;
        esac
    done < <(instances "$dir")
    TARGET_PIDS="${pids[*]}"
    quiet "$name ingest"
    log "posting to $name (2 distributors, spread)"
    post "$name" "$OUT/$name.bench.txt" --mode spread --replication-factor "$rf" "${args[@]}" --json-out /dev/null
    # Read back: every ingester's appended-samples counter (RF copies of each sample in all) and
    # the series through the querier.
    local appended=0 series
    while read -r n c p http; do
        [[ "$c" == ingester ]] || continue
        appended=$((appended + $(metric_sum "$http" strata_ingester_samples_appended_total)))
    done < <(instances "$dir")
    series=$(promql "$querier" 'count({job="node"})' "$((LAST_TS / 1000 + 1))")
    # Samples the ingesters refused, summed by reason (a replica that refused what the others
    # stored explains appended < series x rounds x RF).
    local rejected
    rejected=$(while read -r n c p http; do
        [[ "$c" == ingester ]] || continue
        curl -s --max-time 30 "$http/metrics" | grep -E '^strata_ingester_samples_rejected_total' || true
    done < <(instances "$dir") | awk '{match($1, /reason="[^"]*"/); r = substr($1, RSTART + 8, RLENGTH - 9); s[r] += $2}
        END {for (r in s) printf "%s%s=%d", (n++ ? ", " : ""), r, s[r]}')
    while read -r n c p http; do
        [[ "$c" == distributor ]] || continue
        { echo "# $name rep $rep $n"; curl -s --max-time 30 "$http/metrics" | grep -E '^strata_distributor_(ingester|received|push)' || true; } \
            >>"$OUT/distributor-metrics.txt"
    done < <(instances "$dir")
    echo "$name rep $rep: samples appended by the ingesters $appended (expected $((SERIES * ROUNDS * rf))), refused by them: ${rejected:-none}, series $series (expected $SERIES)" \
        | tee -a "$OUT/verify.txt" >&2
    [[ "$appended" == "$((SERIES * ROUNDS * rf))" && "$series" == "$SERIES" ]] \
        || note "$name rep $rep: read-back mismatch: $appended samples appended, $series series"
    if [[ "$QUERIES" == 1 && "$rf" == 3 && "$rep" == 1 && "${QUERIES_DONE_RF3:-0}" == 0 ]]; then
        run_queries strata-rf3 "$d1/api/v1/push" "$querier" "${pids[*]}"
        QUERIES_DONE_RF3=1
    fi
    while read -r n c p http; do
        echo "$name rep $rep: $n RSS at the end $(awk '/VmRSS/ {print $2 " kB"}' "/proc/$p/status" 2>/dev/null)" >>"$OUT/rss-end.txt"
    done < <(instances "$dir")
    cluster_down "$dir"
    TARGET_PIDS=""
    echo "$name rep $rep: data dirs after stop $(du -sb "$dir" | cut -f1) bytes" >>"$OUT/disk.txt"
    if [[ "$KEEP_DATA" == 1 ]]; then mv "$dir" "$OUT/$name-data.$rep.$(date +%s)"; else rm -rf "$dir"; fi
}

run_vm() { # rep
    local rep="$1" i port data pid ok=1
    local -a args=() urls=()
    VM_PIDS=()
    quiet "vm-x3 start"
    for i in 1 2 3; do
        port=$((VM_PORT_BASE + i - 1))
        port_free "$port" || { note "vm-x3: port $port in use: skipped"; ok=0; break; }
        data="$WORK/vm-$i"
        rm -rf "$data" && mkdir -p "$data"
        local -a cmd=(/usr/bin/victoria-metrics "-storageDataPath=$data" "-httpListenAddr=127.0.0.1:$port"
            -search.maxQueryDuration=10m -retentionPeriod=10y)
        echo "vm-$i: ${cmd[*]}" >>"$OUT/commands.txt"
        "${cmd[@]}" >>"$OUT/vm-$i.log" 2>&1 &
        pid=$!
        VM_PIDS+=("$pid")
        args+=(--pid "vm-$i=$pid" --url "http://127.0.0.1:$port/api/v1/write")
        urls+=("http://127.0.0.1:$port")
    done
    if (( ok )); then
        for i in 0 1 2; do
            wait_ready "${urls[$i]}/health" "${VM_PIDS[$i]}" "vm-$((i + 1))" || { ok=0; break; }
        done
    fi
    if (( ok )); then
        TARGET_PIDS="${VM_PIDS[*]}"
        quiet "vm-x3 ingest"
        log "posting to vm-x3 (every request to all 3, acknowledged at 2)"
        post vm-x3 "$OUT/vm-x3.bench.txt" --mode quorum --quorum 2 --replication-factor 3 "${args[@]}" --json-out /dev/null
        local t=$((LAST_TS / 1000 + 1)) u
        for u in "${urls[@]}"; do
            curl -s -o /dev/null --max-time 60 "$u/internal/force_flush" || true
        done
        sleep 2
        for u in "${urls[@]}"; do
            local s n
            s=$(promql "$u" 'count({job="node"})' "$t" nocache=1)
            n=$(promql "$u" 'sum(count_over_time({job="node"}[1h]))' "$t" nocache=1)
            echo "vm-x3 rep $rep: $u series $s (expected $SERIES), samples $n (expected $((SERIES * ROUNDS)))" \
                | tee -a "$OUT/verify.txt" >&2
            [[ "$s" == "$SERIES" && "$n" == "$((SERIES * ROUNDS))" ]] \
                || note "vm-x3 rep $rep: $u read-back mismatch: $s series, $n samples"
        done
        if [[ "$QUERIES" == 1 && "$rep" == 1 && "${QUERIES_DONE_VM:-0}" == 0 ]]; then
            run_queries victoriametrics "${urls[0]}/api/v1/write" "${urls[0]}" "${VM_PIDS[*]}"
            QUERIES_DONE_VM=1
        fi
    fi
    for i in "${!VM_PIDS[@]}"; do
        stop_target "${VM_PIDS[$i]}" "vm-$((i + 1))"
    done
    VM_PIDS=()
    TARGET_PIDS=""
    for i in 1 2 3; do
        echo "vm-x3 rep $rep: vm-$i data dir after stop $(du -sb "$WORK/vm-$i" 2>/dev/null | cut -f1) bytes" >>"$OUT/disk.txt"
        if [[ "$KEEP_DATA" == 1 ]]; then mv "$WORK/vm-$i" "$OUT/vm-$i-data.$rep.$(date +%s)"; else rm -rf "$WORK/vm-$i"; fi
    done
}

# A profile of distributor-1 and ingester-1 during one more RF=3 run (not in the table).
run_perf() {
    command -v perf >/dev/null || { note "--perf: no perf binary"; return 0; }
    local dir="$WORK/cluster-perf" n c p http d="" ing=""
    rm -rf "$dir" && mkdir -p "$dir"
    cluster_env 3
    CLUSTER_DIR="$dir"
    env "${CLUSTER_ENV[@]}" timeout "$READY_TIMEOUT" "$CLUSTER_SH" up "$dir" >"$dir/instances.json" 2>"$OUT/perf-up.log" \
        || { note "--perf: cluster.sh up failed"; cluster_down "$dir"; return 0; }
    wait_ring "$dir" 3 || { cluster_down "$dir"; return 0; }
    local -a args=()
    while read -r n c p http; do
        case "$n" in
            distributor-1) d="$p" ;;
            ingester-1) ing="$p" ;;
        esac
        [[ "$c" == distributor ]] && args+=(--url "$http/api/v1/push")
    done < <(instances "$dir")
    quiet "perf run"
    perf record -F 499 -p "$d,$ing" -o "$OUT/perf.data" 2>>"$OUT/perf.log" &
    PERF_PID=$!
    sleep 1
    timeout $((MAX_RUN + 300)) "$BENCH" --payloads "$WORK/payloads.bin" --target strata-rf3-perf --settle-secs 0 \
        --mode spread "${args[@]}" >>"$OUT/perf-run.txt" 2>&1 || true
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=""
    perf report -i "$OUT/perf.data" --stdio --no-children --sort pid,dso,symbol --percent-limit 0.4 2>/dev/null \
        | grep -v '^$' | head -150 >"$OUT/perf.txt" || true
    perf report -i "$OUT/perf.data" --stdio --no-children --sort pid,dso --percent-limit 0.5 2>/dev/null \
        | grep -v '^$' | head -40 >"$OUT/perf-dso.txt" || true
    echo "perf: distributor-1 pid $d, ingester-1 pid $ing" >>"$OUT/perf.txt"
    cluster_down "$dir"
    rm -rf "$dir"
}

# ---------------------------------------------------------------- run
for ((rep = 1; rep <= REPEAT; rep++)); do
    (( REPEAT > 1 )) && log "repetition $rep of $REPEAT"
    build_payloads
    for t in "${WANT[@]}"; do
        for ((attempt = 0; attempt <= RETRIES; attempt++)); do
            LAST_ATTEMPT=$(( attempt == RETRIES ? 1 : 0 ))
            case "$t" in
                rf3) run_strata 3 "$rep" ;;
                rf1) run_strata 1 "$rep" ;;
                vm) run_vm "$rep" ;;
            esac
            [[ "$LAST_DISTURBED" == true ]] || break
            if (( attempt < RETRIES )); then
                log "$t: run disturbed by other processes; running it again"
            else
                note "$t: every attempt of repetition $rep was disturbed by other processes"
            fi
        done
    done
done
if [[ "$PERF" == 1 ]]; then run_perf; fi

echo >&2
log "results: $OUT"
"$BENCH" --cluster-report "$RESULTS" --query-timings "$TIMINGS" | tee "$OUT/report.md"
if [[ -s "$NOTES" ]]; then
    echo
    echo "notes:"
    sed 's/^/- /' "$NOTES"
fi
exit 0
}
