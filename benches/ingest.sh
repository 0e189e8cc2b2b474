#!/usr/bin/env bash
# Ingest benchmark (remote write 1.0): Strata vs VictoriaMetrics 1.79 vs Prometheus 2.42, same payloads.
#
# Builds the release binaries, builds the request bodies once (ingest-bench --save-payloads), then for each
# target in turn: starts it on 127.0.0.1 with a fresh data dir, waits until it is ready and the machine is
# idle, posts the payloads (ingest-bench --payloads ... --pid ...), stops it by pid. Prints a table and ratios.
#
#   benches/ingest.sh [--series N] [--rounds N] [--shards N] [--max-samples-per-send N]
#                     [--targets strata,victoriametrics,prometheus] [--out DIR] [--no-build] ...
# See --help. Everything listens on loopback only; every step has a time limit.
set -euo pipefail
# The whole script is one compound command, read before anything runs: editing the file during a run
# cannot change what that run does.
{

SERIES=100000
ROUNDS=60
SHARDS=16
MAX_SAMPLES=2000
TARGETS="strata,victoriametrics,prometheus"
OUT=""
BUILD=1
SETTLE=5
MAX_RUN=900
READY_TIMEOUT=120
WAIT_IDLE=180
KEEP_DATA=0
STRATA_EXTRA_ARGS=""
STRATA_HEADER=""
PORT_BASE=19400
REPEAT=1
RETRIES=2

usage() {
    cat <<EOF
usage: $0 [options]
  --series N                active series (default $SERIES)
  --rounds N                scrape rounds, 15 s apart (default $ROUNDS; at most ~215 so samples stay within the last hour)
  --shards N                remote-write shards = concurrent requests (default $SHARDS)
  --max-samples-per-send N  samples per request (default $MAX_SAMPLES)
  --targets LIST            comma-separated: strata, victoriametrics (vm), prometheus (prom) (default $TARGETS)
  --out DIR                 results directory (default: a new dir under \${TMPDIR:-/tmp})
  --no-build                use the binaries already in \$CARGO_TARGET_DIR/release
  --settle SECS             wait after the last response before reading RSS "after" (default $SETTLE)
  --max-run-secs SECS       time limit for posting to one target (default $MAX_RUN)
  --wait-idle SECS          wait up to SECS for other CPU load to stop before each target (default $WAIT_IDLE; 0 = don't)
  --repeat N                run the whole sequence of targets N times (interleaved); the table shows medians (default $REPEAT)
  --retries N               run a target again (fresh) when other processes used >10% of a core during its run,
                            up to N times (default $RETRIES); the report leaves disturbed runs out of the medians
  --keep-data               keep each target's data dir in the results dir
  --strata-args "ARGS"      extra arguments for the strata binary
  --strata-header "N: V"    extra request header for strata only (e.g. "X-Scope-OrgID: bench")
  --port-base N             ports N (strata), N+1 (victoriametrics), N+2 (prometheus) (default $PORT_BASE)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --series) SERIES="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --shards) SHARDS="$2"; shift 2 ;;
        --max-samples-per-send) MAX_SAMPLES="$2"; shift 2 ;;
        --targets) TARGETS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --settle) SETTLE="$2"; shift 2 ;;
        --max-run-secs) MAX_RUN="$2"; shift 2 ;;
        --wait-idle) WAIT_IDLE="$2"; shift 2 ;;
        --keep-data) KEEP_DATA=1; shift ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --retries) RETRIES="$2"; shift 2 ;;
        --strata-args) STRATA_EXTRA_ARGS="$2"; shift 2 ;;
        --strata-header) STRATA_HEADER="$2"; shift 2 ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
BENCH="$CARGO_TARGET_DIR/release/ingest-bench"
STRATA_BIN="$CARGO_TARGET_DIR/release/strata"

# Normalise target names.
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
wants() { local x; for x in "${WANT[@]}"; do [[ "$x" == "$1" ]] && return 0; done; return 1; }

if [[ -z "$OUT" ]]; then
    OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-ingest-bench.XXXXXX")"
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-ingest-work.XXXXXX")"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
NOTES="$OUT/notes.txt"
: >"$NOTES"

TARGET_PID=""
cleanup() {
    if [[ -n "$TARGET_PID" ]] && kill -0 "$TARGET_PID" 2>/dev/null; then
        kill -TERM "$TARGET_PID" 2>/dev/null || true
        sleep 2
        kill -KILL "$TARGET_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"

# ---------------------------------------------------------------- machine
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
        "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')," \
        "model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')," \
        "$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') MHz)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (dirty or uncommitted)')"
} >"$OUT/machine.txt"

# ---------------------------------------------------------------- peers
ensure_pkg() { # binary package
    if [[ ! -x "$1" ]]; then
        log "$1 missing: installing Debian package $2"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    fi
}
if wants prometheus; then
    ensure_pkg /usr/bin/prometheus prometheus
    echo "prometheus: $(/usr/bin/prometheus --version 2>&1 | head -1)" >>"$OUT/machine.txt"
fi
if wants victoriametrics; then
    ensure_pkg /usr/bin/victoria-metrics victoria-metrics
    echo "victoria-metrics: $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)" >>"$OUT/machine.txt"
fi
cat "$OUT/machine.txt" >&2

# ---------------------------------------------------------------- build
STRATA_OK=0
if [[ "$BUILD" == 1 ]]; then
    cd "$ROOT"
    if wants strata; then
        log "cargo build --release -p strata -p strata-benches"
        if cargo build --release -p strata -p strata-benches 2>"$OUT/build.log"; then
            STRATA_OK=1
        else
            note "strata did not build (see $OUT/build.log): strata is skipped"
            cargo build --release -p strata-benches 2>>"$OUT/build.log" || { tail -30 "$OUT/build.log" >&2; exit 1; }
        fi
    else
        log "cargo build --release -p strata-benches"
        cargo build --release -p strata-benches 2>"$OUT/build.log" || { tail -30 "$OUT/build.log" >&2; exit 1; }
    fi
else
    if [[ -x "$STRATA_BIN" ]]; then STRATA_OK=1; elif wants strata; then note "no strata binary at $STRATA_BIN: strata is skipped"; fi
fi
[[ -x "$BENCH" ]] || { echo "missing $BENCH" >&2; exit 1; }
if wants strata && [[ "$STRATA_OK" == 1 && ! -x "$STRATA_BIN" ]]; then
    note "no strata binary at $STRATA_BIN: strata is skipped"
    STRATA_OK=0
fi

if [[ "$STRATA_OK" == 1 ]]; then
    echo "strata binary: $STRATA_BIN, built $(date -u -r "$STRATA_BIN" +%Y-%m-%dT%H:%M:%SZ)" >>"$OUT/machine.txt"
fi

# ---------------------------------------------------------------- payloads
# Built once per repetition (same seed, so the same series and values; only the timestamps move so that the
# last round stays about a minute old), then sent unchanged to every target.
PAYLOADS_BUILT=0
# Rebuilds the payloads if, sent now, their oldest samples would be more than ~57 minutes old (waits for an
# idle machine and reruns can take a while).
ensure_fresh_payloads() {
    local age=$((SECONDS - PAYLOADS_BUILT))
    if (( age + ROUNDS * 15 + 60 + 120 > 57 * 60 )); then
        log "payloads are ${age}s old: rebuilding them so that every sample stays within the last hour"
        build_payloads
    fi
}
build_payloads() {
    PAYLOADS_BUILT=$SECONDS
    log "building payloads: $SERIES series, $ROUNDS rounds, $SHARDS shards, $MAX_SAMPLES samples/request"
    "$BENCH" --series "$SERIES" --rounds "$ROUNDS" --shards "$SHARDS" --max-samples-per-send "$MAX_SAMPLES" \
        --save-payloads "$WORK/payloads.bin" 2>&1 | tee -a "$OUT/payloads.log" >&2
}

# ---------------------------------------------------------------- helpers
wait_idle() {
    [[ "$WAIT_IDLE" -gt 0 ]] || return 0
    local start=$SECONDS pct
    while :; do
        pct=$(cpu_busy_pct)
        (( pct < 10 )) && return 0
        if (( SECONDS - start >= WAIT_IDLE )); then
            note "$1: machine still ${pct}% busy after waiting ${WAIT_IDLE}s; running anyway (see other_cpu_s_run)"
            return 0
        fi
        log "machine ${pct}% busy; waiting for it to go idle before $1"
        sleep 4
    done
}

# Reads back what the target stored: number of series and of samples in the last hour. Strata's query API may
# not exist yet; a failed query is recorded, not fatal.
verify() { # name base_url last_sample_ms
    local name="$1" base="$2" extra="" now series samples
    if [[ "$name" == victoriametrics ]]; then
        curl -s -o /dev/null --max-time 60 "$base/internal/force_flush" || true
        sleep 2
        extra="nocache=1"
    fi
    # Evaluate just after the last sample, so that staleness (5 min) cannot hide series whatever the delays.
    now=$(( $3 / 1000 + 1 ))
    q() {
        curl -s --max-time 120 -G "$base/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$now" \
            ${extra:+--data-urlencode "$extra"} | jq -r '.data.result[0].value[1] // "n/a"' 2>/dev/null || echo "n/a"
    }
    series=$(q 'count({job="node"})')
    if [[ "$name" == strata ]]; then
        # No PromQL engine yet: count series with the series API and samples with the head's own counter.
        series=$(curl -s --max-time 120 -G "$base/api/v1/series" --data-urlencode 'match[]={job="node"}' \
            --data-urlencode "start=$((now - 3600))" --data-urlencode "end=$now" | jq -r '.data | length' 2>/dev/null || echo n/a)
        samples=$(curl -s --max-time 30 "$base/metrics" | awk '/^strata_ingester_samples_appended_total / {printf "%d", $2}')
        [[ -n "$samples" ]] || samples="n/a"
    elif [[ "$name" == prometheus ]]; then
        # count_over_time drops __name__, and Prometheus refuses the resulting duplicate label sets: read the
        # TSDB's own counter instead (out-of-bounds/out-of-order samples would not be counted there).
        samples=$(curl -s --max-time 30 "$base/metrics" | awk '/^prometheus_tsdb_head_samples_appended_total\{type="float"\}/ {printf "%d", $2}')
        [[ -n "$samples" ]] || samples="n/a"
    else
        samples=$(q 'sum(count_over_time({job="node"}[1h]))')
    fi
    echo "$name: stored series $series (expected $SERIES), samples in the last hour $samples (expected $((SERIES * ROUNDS)))" | tee -a "$OUT/verify.txt" >&2
    if [[ "$series" != "$SERIES" || "$samples" != "$((SERIES * ROUNDS))" ]]; then
        note "$name: read-back mismatch: $series series, $samples samples"
    fi
}

LAST_DISTURBED=false
run_target() {
    local name="$1" port data ready push
    LAST_DISTURBED=false
    case "$name" in
        strata) port=$PORT_BASE ;;
        victoriametrics) port=$((PORT_BASE + 1)) ;;
        prometheus) port=$((PORT_BASE + 2)) ;;
    esac
    port_free "$port" || { note "$name: port $port in use: skipped"; return 0; }
    data="$WORK/$name-data"
    rm -rf "$data" && mkdir -p "$data"
    local -a cmd
    case "$name" in
        strata)
            # shellcheck disable=SC2206
            cmd=("$STRATA_BIN" --data-dir "$data" --http-listen-address "127.0.0.1:$port" $STRATA_EXTRA_ARGS)
            ready="http://127.0.0.1:$port/ready"
            push="http://127.0.0.1:$port/api/v1/push"
            ;;
        victoriametrics)
            cmd=(/usr/bin/victoria-metrics "-storageDataPath=$data" "-httpListenAddr=127.0.0.1:$port")
            ready="http://127.0.0.1:$port/health"
            push="http://127.0.0.1:$port/api/v1/write"
            ;;
        prometheus)
            printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$WORK/prometheus.yml"
            cmd=(/usr/bin/prometheus "--config.file=$WORK/prometheus.yml" "--storage.tsdb.path=$data"
                "--web.listen-address=127.0.0.1:$port" --web.enable-remote-write-receiver)
            ready="http://127.0.0.1:$port/-/ready"
            push="http://127.0.0.1:$port/api/v1/write"
            ;;
    esac
    log "starting $name: ${cmd[*]}"
    echo "$name: ${cmd[*]}" >>"$OUT/commands.txt"
    "${cmd[@]}" >>"$OUT/$name.log" 2>&1 &
    TARGET_PID=$!
    if ! wait_ready "$ready" "$TARGET_PID" "$name"; then
        note "$name did not become ready (log: $OUT/$name.log): skipped"
        stop_target "$TARGET_PID" "$name"
        TARGET_PID=""
        return 0
    fi
    wait_idle "$name"
    log "posting to $name ($push, pid $TARGET_PID)"
    local rc=0
    local -a extra=()
    [[ "$name" == strata && -n "$STRATA_HEADER" ]] && extra=(--header "$STRATA_HEADER")
    timeout $((MAX_RUN + SETTLE + 120)) "$BENCH" --payloads "$WORK/payloads.bin" --url "$push" --pid "$TARGET_PID" \
        --target "$name" --settle-secs "$SETTLE" --max-run-secs "$MAX_RUN" --json-out "$RESULTS" \
        "${extra[@]}" >"$WORK/bench.txt" 2>&1 || rc=$?
    cat "$WORK/bench.txt" >>"$OUT/$name.bench.txt"
    LAST_DISTURBED=$(grep '^{' "$WORK/bench.txt" | tail -1 | jq -r '.disturbed // false' 2>/dev/null || echo false)
    grep -v '^{' "$WORK/bench.txt" >&2 || true
    if [[ "$rc" == 3 ]]; then
        note "$name: some requests failed or were skipped (see $OUT/$name.bench.txt)"
    elif [[ "$rc" != 0 ]]; then
        note "$name: ingest-bench exited with $rc"
    fi
    if kill -0 "$TARGET_PID" 2>/dev/null; then
        verify "$name" "http://127.0.0.1:$port" \
            "$(grep '^{' "$WORK/bench.txt" | tail -1 | jq -r '.last_ts_ms // 0' 2>/dev/null || echo 0)"
    else
        note "$name exited during the run (log: $OUT/$name.log)"
    fi
    stop_target "$TARGET_PID" "$name"
    TARGET_PID=""
    echo "$name data dir after stop: $(du -sb "$data" | cut -f1) bytes" >>"$OUT/disk.txt"
    if [[ "$KEEP_DATA" == 1 ]]; then mv "$data" "$OUT/$name-data.$(date +%s)"; else rm -rf "$data"; fi
}

# ---------------------------------------------------------------- run
for ((rep = 1; rep <= REPEAT; rep++)); do
    (( REPEAT > 1 )) && log "repetition $rep of $REPEAT"
    build_payloads
    for t in "${WANT[@]}"; do
        if [[ "$t" == strata && "$STRATA_OK" != 1 ]]; then
            continue
        fi
        for ((attempt = 0; attempt <= RETRIES; attempt++)); do
            ensure_fresh_payloads
            run_target "$t"
            [[ "$LAST_DISTURBED" == true ]] || break
            if (( attempt < RETRIES )); then
                log "$t: run disturbed by other processes; running it again"
            else
                note "$t: every attempt of repetition $rep was disturbed by other processes"
            fi
        done
    done
done

echo >&2
log "results: $OUT"
"$BENCH" --report "$RESULTS" | tee "$OUT/report.md"
if [[ -s "$NOTES" ]]; then
    echo
    echo "notes:"
    sed 's/^/- /' "$NOTES"
fi
exit 0
}
