#!/usr/bin/env bash
# Range-query benchmark: Strata vs VictoriaMetrics 1.79 vs Prometheus 2.42 on the same seeded data.
#
# For each scale (series selected per query) and each target in turn: start the target on 127.0.0.1 with a fresh
# data dir, load the data set with remote write 1.0 (query-bench load), read it back (query-bench verify), wait
# for the machine to go idle (compactions, merges), time the three range queries (query-bench time), save the
# answers, stop the target by pid. Then compare the answers with Prometheus's and print the table.
#
#   benches/query.sh [--scales 20000,100000] [--targets strata,victoriametrics,prometheus] [--runs 5] [--warmup 1]
#                    [--perf] [--out DIR] [--no-build] ...
# See --help. Everything listens on loopback only; every step has a time limit.
set -euo pipefail

SCALES="20000,100000"
TARGETS="strata,victoriametrics,prometheus"
RUNS=5
WARMUP=1
SEED=1
POINTS=1500
SHARDS=8
BATCH=20000
OUT=""
BUILD=1
END_MS=""
PERF=0
MAX_LOAD=1800
READY_TIMEOUT=180
SETTLE_MAX=600
WAIT_OTHERS=1800
RETRIES=3
PORT_BASE=19500
KEEP_DATA=0
STRATA_EXTRA_ARGS=""
ORIG_ARGS="$*"

usage() {
    cat <<EOF
usage: $0 [options]
  --scales LIST         comma-separated series counts per query (default $SCALES; multiples of 40)
  --targets LIST        strata, victoriametrics (vm), prometheus (prom) (default $TARGETS)
  --runs N              timed runs per query (default $RUNS)
  --warmup N            untimed runs before them (default $WARMUP)
  --seed N              data set seed (default $SEED)
  --points N            samples per series, 15 s apart (default $POINTS = 6 h 15 min)
  --shards N            concurrent remote-write shards while loading (default $SHARDS)
  --batch N             samples per remote-write request, about (default $BATCH)
  --end-ms MS           timestamp of the last sample (default: a minute boundary 2-3 minutes before the start)
  --perf                profile Strata (perf record, flat) during extra runs of each query at the last scale
  --out DIR             results directory (default: a new dir under \${TMPDIR:-/tmp})
  --no-build            use the binaries already in \$CARGO_TARGET_DIR/release
  --max-load-secs S     time limit for loading one target (default $MAX_LOAD)
  --settle-max S        after loading, wait up to S seconds for the machine to go idle (default $SETTLE_MAX)
  --wait-others S       wait up to S seconds while other benchmarks use CPU (default $WAIT_OTHERS)
  --retries N           time a query again (up to N times) when other processes used >10% of a core
                        during its runs (default $RETRIES); the report uses the last attempt
  --keep-data           keep the targets' data dirs under the results dir
  --strata-args "ARGS"  extra arguments for the strata binary
  --port-base N         ports N (strata), N+1 (victoriametrics), N+2 (prometheus) (default $PORT_BASE)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --scales) SCALES="$2"; shift 2 ;;
        --targets) TARGETS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --points) POINTS="$2"; shift 2 ;;
        --shards) SHARDS="$2"; shift 2 ;;
        --batch) BATCH="$2"; shift 2 ;;
        --end-ms) END_MS="$2"; shift 2 ;;
        --perf) PERF=1; shift ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --max-load-secs) MAX_LOAD="$2"; shift 2 ;;
        --settle-max) SETTLE_MAX="$2"; shift 2 ;;
        --wait-others) WAIT_OTHERS="$2"; shift 2 ;;
        --retries) RETRIES="$2"; shift 2 ;;
        --keep-data) KEEP_DATA=1; shift ;;
        --strata-args) STRATA_EXTRA_ARGS="$2"; shift 2 ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
BENCH="$CARGO_TARGET_DIR/release/query-bench"
STRATA_BIN="$CARGO_TARGET_DIR/release/strata"

declare -a WANT=()
IFS=',' read -r -a _targets <<<"$TARGETS"
for t in "${_targets[@]}"; do
    case "$t" in
        strata) WANT+=(strata) ;;
        vm|victoriametrics|victoria-metrics) WANT+=(victoriametrics) ;;
        prom|prometheus) WANT+=(prometheus) ;;
        "") ;;
        *) echo "unknown target: $t" >&2; exit 2 ;;
    esac
done
IFS=',' read -r -a SCALE_LIST <<<"$SCALES"

[[ -n "$OUT" ]] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-query-bench.XXXXXX")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-query-work.XXXXXX")"
NOTES="$OUT/notes.txt"
touch "$NOTES" "$OUT/load.jsonl" "$OUT/verify.jsonl" "$OUT/timings.jsonl"

TARGET_PID=""
PERF_PID=""
cleanup() {
    if [[ -n "$PERF_PID" ]] && kill -0 "$PERF_PID" 2>/dev/null; then
        kill -INT "$PERF_PID" 2>/dev/null || true
    fi
    if [[ -n "$TARGET_PID" ]] && kill -0 "$TARGET_PID" 2>/dev/null; then
        kill -TERM "$TARGET_PID" 2>/dev/null || true
        sleep 3
        kill -KILL "$TARGET_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------- machine
machine_info "$ROOT" "$0 $ORIG_ARGS" >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- build
if [[ "$BUILD" == 1 ]]; then
    log "cargo build --release -p strata -p strata-benches"
    (cd "$ROOT" && cargo build --release -p strata -p strata-benches 2>"$OUT/build.log") \
        || { tail -30 "$OUT/build.log" >&2; exit 1; }
fi
[[ -x "$BENCH" ]] || { echo "missing $BENCH" >&2; exit 1; }
for t in "${WANT[@]}"; do
    case "$t" in
        strata) [[ -x "$STRATA_BIN" ]] || { echo "missing $STRATA_BIN" >&2; exit 1; } ;;
        victoriametrics) [[ -x /usr/bin/victoria-metrics ]] || { echo "missing /usr/bin/victoria-metrics (apt-get install victoria-metrics)" >&2; exit 1; } ;;
        prometheus) [[ -x /usr/bin/prometheus ]] || { echo "missing /usr/bin/prometheus (apt-get install prometheus)" >&2; exit 1; } ;;
    esac
done

# Run copies of the binaries, so that a rebuild during the run does not change what is measured.
cp "$BENCH" "$WORK/query-bench"
BENCH="$WORK/query-bench"
if [[ -x "$STRATA_BIN" ]]; then
    cp "$STRATA_BIN" "$WORK/strata"
    echo "strata binary: $STRATA_BIN, built $(date -u -r "$STRATA_BIN" +%FT%TZ), sha256 $(sha256sum "$STRATA_BIN" | cut -c1-16)" >>"$OUT/machine.txt"
    STRATA_BIN="$WORK/strata"
fi

[[ -n "$END_MS" ]] || END_MS=$("$BENCH" end-ms)
echo "end_ms: $END_MS (last sample $(date -u -d "@$((END_MS / 1000))" +%FT%TZ))" >>"$OUT/machine.txt"
log "last sample at $(date -u -d "@$((END_MS / 1000))" +%FT%TZ); $POINTS samples per series, seed $SEED"

# Limits raised to Prometheus's as the script runs it (--query.max-samples=1e9): at 100k series a
# 6 h selection holds 150 M samples, over the querier's default read and memory limits.
cat >"$WORK/strata.yml" <<EOF
querier:
  max_samples: 1000000000
  max_samples_per_read: 1000000000
  max_query_memory_bytes: 34359738368
  query_timeout: 10m
EOF
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$WORK/prometheus.yml"

run_target() { # name scale
    local name="$1" scale="$2" port data ready push base
    case "$name" in
        strata) port=$PORT_BASE ;;
        victoriametrics) port=$((PORT_BASE + 1)) ;;
        prometheus) port=$((PORT_BASE + 2)) ;;
    esac
    port_free "$port" || { note "$name: port $port in use: skipped"; return 0; }
    data="$WORK/$name-$scale"
    rm -rf "$data" && mkdir -p "$data"
    base="http://127.0.0.1:$port"
    local -a cmd
    case "$name" in
        strata)
            # shellcheck disable=SC2206
            cmd=("$STRATA_BIN" --config "$WORK/strata.yml" --data-dir "$data" --http-listen-address "127.0.0.1:$port" $STRATA_EXTRA_ARGS)
            ready="$base/ready"; push="$base/api/v1/push" ;;
        victoriametrics)
            cmd=(/usr/bin/victoria-metrics "-storageDataPath=$data" "-httpListenAddr=127.0.0.1:$port"
                 -search.maxQueryDuration=10m -retentionPeriod=10y)
            ready="$base/health"; push="$base/api/v1/write" ;;
        prometheus)
            cmd=(/usr/bin/prometheus "--config.file=$WORK/prometheus.yml" "--storage.tsdb.path=$data"
                 "--web.listen-address=127.0.0.1:$port" --web.enable-remote-write-receiver
                 --query.max-samples=1000000000 --query.timeout=10m --storage.tsdb.retention.time=10y)
            ready="$base/-/ready"; push="$base/api/v1/write" ;;
    esac
    wait_quiet "$name $scale load"
    log "starting $name: ${cmd[*]}"
    echo "$name: ${cmd[*]}" >>"$OUT/commands.txt"
    "${cmd[@]}" >>"$OUT/$name-$scale.log" 2>&1 &
    TARGET_PID=$!
    if ! wait_ready "$ready" "$TARGET_PID" "$name"; then
        note "$name did not become ready (log: $OUT/$name-$scale.log): skipped"
        stop_target "$TARGET_PID" "$name"; TARGET_PID=""
        return 0
    fi
    local data_args=(--scale "$scale" --seed "$SEED" --points "$POINTS" --end-ms "$END_MS")
    log "loading $name ($push)"
    local rc=0
    timeout $((MAX_LOAD + 120)) "$BENCH" load "${data_args[@]}" --url "$push" --target "$name" \
        --shards "$SHARDS" --batch-samples "$BATCH" --max-run-secs "$MAX_LOAD" --json-out "$OUT/load.jsonl" \
        2> >(tee -a "$OUT/load.log" >&2) >/dev/null || rc=$?
    [[ "$rc" == 0 ]] || note "$name $scale: load exited with $rc (see load.jsonl)"
    if [[ "$name" == victoriametrics ]]; then
        curl -s -o /dev/null --max-time 120 "$base/internal/force_flush" || true
        sleep 5
    fi
    log "verifying $name"
    rc=0
    timeout 1800 "$BENCH" verify "${data_args[@]}" --base "$base" --target "$name" --json-out "$OUT/verify.jsonl" \
        >/dev/null || rc=$?
    [[ "$rc" == 0 ]] || note "$name $scale: read-back differs from the data set or failed (rc $rc, see verify.jsonl)"
    tail -1 "$OUT/verify.jsonl" | jq -c '{target, scale, ok}' >&2 || true
    wait_settled "$TARGET_PID" "$name"
    wait_quiet "$name $scale timing"
    log "timing $name at $scale series"
    rc=0
    timeout 7200 "$BENCH" time "${data_args[@]}" --base "$base" --target "$name" --pid "$TARGET_PID" \
        --warmup "$WARMUP" --runs "$RUNS" --answers "$OUT/answers" --json-out "$OUT/timings.jsonl" >/dev/null || rc=$?
    [[ "$rc" == 0 ]] || note "$name $scale: timing exited with $rc"
    local attempt ids
    for ((attempt = 0; ; attempt++)); do
        ids=$(jq -rs --arg t "$name" --argjson s "$scale" \
            '[.[] | select(.target == $t and .scale == $s)] | group_by(.query_id)
             | map(last | select(.disturbed) | .query_id) | join(",")' "$OUT/timings.jsonl")
        [[ -n "$ids" ]] || break
        if (( attempt >= RETRIES )); then
            note "$name $scale: $ids still disturbed by other processes after $RETRIES retries"
            break
        fi
        log "$name $scale: $ids disturbed by other processes; timing again (retry $((attempt + 1)))"
        wait_quiet "$name $scale timing again"
        timeout 7200 "$BENCH" time "${data_args[@]}" --base "$base" --target "$name" --pid "$TARGET_PID" \
            --warmup "$WARMUP" --runs "$RUNS" --only "$ids" --answers "$OUT/answers" \
            --json-out "$OUT/timings.jsonl" >/dev/null || true
    done
    if [[ "$PERF" == 1 && "$name" == strata && "$scale" == "${SCALE_LIST[-1]}" ]] && command -v perf >/dev/null; then
        local q
        for q in sum_rate hq_p99 topk_max; do
            log "perf record of strata during 3 runs of $q"
            perf record -F 999 -g -p "$TARGET_PID" -o "$OUT/perf-$q.data" 2>>"$OUT/perf.log" &
            PERF_PID=$!
            sleep 1
            timeout 1800 "$BENCH" time "${data_args[@]}" --base "$base" --target "$name" --warmup 0 --runs 3 \
                --only "$q" --json-out "$OUT/perf-timings.jsonl" >/dev/null || true
            kill -INT "$PERF_PID" 2>/dev/null || true
            wait "$PERF_PID" 2>/dev/null || true
            PERF_PID=""
            perf report -i "$OUT/perf-$q.data" --stdio --no-children --sort symbol --percent-limit 0.5 \
                2>/dev/null | grep -v '^$' | head -120 >"$OUT/perf-$q.txt" || true
            perf report -i "$OUT/perf-$q.data" --stdio --children --sort symbol -g none --percent-limit 2 \
                2>/dev/null | grep -v '^$' | head -80 >"$OUT/perf-$q-children.txt" || true
        done
    fi
    stop_target "$TARGET_PID" "$name"
    TARGET_PID=""
    if [[ "$KEEP_DATA" == 1 ]]; then mv "$data" "$OUT/"; else rm -rf "$data"; fi
}

# ---------------------------------------------------------------- run
for scale in "${SCALE_LIST[@]}"; do
    for t in "${WANT[@]}"; do
        run_target "$t" "$scale"
    done
    rm -f "$OUT/compare.jsonl"
    "$BENCH" compare --answers "$OUT/answers" --json-out "$OUT/compare.jsonl" >/dev/null || note "compare failed"
    "$BENCH" report --timings "$OUT/timings.jsonl" --compare "$OUT/compare.jsonl" --verify "$OUT/verify.jsonl" \
        --load "$OUT/load.jsonl" >"$OUT/report.md" || true
done

echo >&2
log "results: $OUT"
cat "$OUT/report.md"
if [[ -s "$NOTES" ]]; then
    echo
    echo "notes:"
    sed 's/^/- /' "$NOTES"
fi
