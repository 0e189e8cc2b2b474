#!/usr/bin/env bash
# Alertmanager benchmark: Strata (--target=alertmanager) vs Debian's Alertmanager 0.25, same configuration,
# same load (am-bench).
#
# For each target in turn: start it on 127.0.0.1 with a fresh data dir and the same alertmanager.yml (route
# group_by [group], group_wait 1s, group_interval 5m, repeat_interval 4h, one webhook receiver: am-bench's own
# endpoint), wait until it is ready and the machine is quiet, run am-bench (initial round of alerts, resends
# for --duration seconds, then the notification-latency probe), record the target's CPU seconds and peak RSS
# (VmHWM) from /proc, stop it by pid. Prints a table with the ratios Strata / Alertmanager.
#
#   benches/alertmanager.sh [--duration 30] [--connections 8] [--repeat 1] [--out DIR] [--no-build] ...
# See --help. Everything listens on loopback only; every step has a time limit.
set -euo pipefail
# The whole script is one compound command, read before anything runs: editing the file during a run
# cannot change what that run does.
{

TARGETS="strata,alertmanager"
DURATION=30
CONNECTIONS=8
ALERTS=10000
GROUPS_N=1000
BATCH=64
GROUP_WAIT_MS=1000
LATENCY_GROUPS=500
REPEAT=1
OUT=""
BUILD=1
READY_TIMEOUT=120
WAIT_OTHERS=600
SETTLE_MAX=60
PORT_BASE=19800
ORIG_ARGS="$*"

usage() {
    cat <<EOF
usage: $0 [options]
  --targets LIST       strata, alertmanager (am) (default $TARGETS)
  --duration S         seconds of resends in the throughput phase (default $DURATION)
  --connections N      concurrent connections of am-bench (default $CONNECTIONS)
  --alerts N           active alerts (default $ALERTS)
  --groups N           groups they fall into (default $GROUPS_N)
  --batch N            alerts per request (default $BATCH, Prometheus's notifier batch)
  --latency-groups N   new groups posted in the latency phase (default $LATENCY_GROUPS)
  --repeat N           run the sequence of targets N times (interleaved); the table shows medians (default $REPEAT)
  --out DIR            results directory (default: a new dir under \${TMPDIR:-/tmp})
  --no-build           use the binaries already in \$CARGO_TARGET_DIR/release
  --wait-others S      before each target, wait up to S s while other benchmarks are busy (default $WAIT_OTHERS)
  --port-base N        ports N (strata), N+1 (alertmanager), N+2 (am-bench's webhook receiver) (default $PORT_BASE)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --targets) TARGETS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --alerts) ALERTS="$2"; shift 2 ;;
        --groups) GROUPS_N="$2"; shift 2 ;;
        --batch) BATCH="$2"; shift 2 ;;
        --latency-groups) LATENCY_GROUPS="$2"; shift 2 ;;
        --repeat) REPEAT="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --wait-others) WAIT_OTHERS="$2"; shift 2 ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
REL="$CARGO_TARGET_DIR/release"
AM_BIN=/usr/bin/prometheus-alertmanager

declare -a WANT=()
IFS=',' read -r -a _targets <<<"$TARGETS"
for t in "${_targets[@]}"; do
    case "$t" in
        strata) WANT+=(strata) ;;
        am|alertmanager|prometheus-alertmanager) WANT+=(alertmanager) ;;
        "") ;;
        *) echo "unknown target: $t" >&2; exit 2 ;;
    esac
done

[[ -n "$OUT" ]] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-am-bench.XXXXXX")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-am-work.XXXXXX")"
NOTES="$OUT/notes.txt"
RESULTS="$OUT/results.jsonl"
touch "$NOTES" "$RESULTS"

TARGET_PID=""
cleanup() {
    if [[ -n "$TARGET_PID" ]] && kill -0 "$TARGET_PID" 2>/dev/null; then
        kill -TERM "$TARGET_PID" 2>/dev/null || true
        sleep 3
        kill -KILL "$TARGET_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
    machine_info "$ROOT" "$0 $ORIG_ARGS"
    echo "alertmanager: $("$AM_BIN" --version 2>&1 | head -1) (package $(dpkg-query -W -f='${Version}' prometheus-alertmanager 2>/dev/null || echo unknown))"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

if [[ "$BUILD" == 1 ]]; then
    log "cargo build --release -p strata-benches"
    (cd "$ROOT" && cargo build --release -p strata-benches 2>"$OUT/build.log") \
        || { tail -30 "$OUT/build.log" >&2; exit 1; }
    [[ -x "$REL/strata" ]] || {
        log "cargo build --release -p strata"
        (cd "$ROOT" && cargo build --release -p strata 2>>"$OUT/build.log") || { tail -30 "$OUT/build.log" >&2; exit 1; }
    }
fi
for b in strata am-bench; do
    [[ -x "$REL/$b" ]] || { echo "missing $REL/$b" >&2; exit 1; }
done
[[ -x "$AM_BIN" ]] || { echo "missing $AM_BIN (apt-get install prometheus-alertmanager)" >&2; exit 1; }
# Run copies, so that a rebuild during the run does not change what is measured.
cp "$REL/strata" "$REL/am-bench" "$WORK/"
echo "strata binary: $REL/strata, built $(date -u -r "$REL/strata" +%FT%TZ), sha256 $(sha256sum "$REL/strata" | cut -c1-16)" \
    >>"$OUT/machine.txt"

HOOK_PORT=$((PORT_BASE + 2))
# The same file for both targets.
cat >"$WORK/alertmanager.yml" <<EOF
route:
  receiver: bench
  group_by: [group]
  group_wait: ${GROUP_WAIT_MS}ms
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: http://127.0.0.1:$HOOK_PORT/
EOF
cat >"$WORK/strata.yml" <<EOF
alertmanager:
  config_file: $WORK/alertmanager.yml
EOF
cp "$WORK/alertmanager.yml" "$WORK/strata.yml" "$OUT/"

status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

run_target() { # name run
    local name="$1" run="$2" port data ready
    local -a cmd
    data="$WORK/$name-data"
    rm -rf "$data" && mkdir -p "$data"
    case "$name" in
        strata)
            port=$PORT_BASE
            cmd=("$WORK/strata" --target=alertmanager --config "$WORK/strata.yml" --data-dir "$data"
                 --http-listen-address "127.0.0.1:$port")
            ready="http://127.0.0.1:$port/ready" ;;
        alertmanager)
            port=$((PORT_BASE + 1))
            cmd=("$AM_BIN" "--config.file=$WORK/alertmanager.yml" "--storage.path=$data"
                 "--web.listen-address=127.0.0.1:$port" --cluster.listen-address=)
            ready="http://127.0.0.1:$port/-/ready" ;;
    esac
    port_free "$port" || { note "$name: port $port in use: skipped"; return 0; }
    port_free "$HOOK_PORT" || { note "webhook port $HOOK_PORT in use: $name skipped"; return 0; }
    wait_quiet "$name run $run"
    log "starting $name: ${cmd[*]}"
    echo "$name: ${cmd[*]}" >>"$OUT/commands.txt"
    "${cmd[@]}" >>"$OUT/$name-$run.log" 2>&1 &
    TARGET_PID=$!
    if ! wait_ready "$ready" "$TARGET_PID" "$name"; then
        note "$name did not become ready (log: $OUT/$name-$run.log): skipped"
        stop_target "$TARGET_PID" "$name"; TARGET_PID=""
        return 0
    fi
    wait_settled "$TARGET_PID" "$name"
    local t0 t1 hwm line rc=0
    t0=$(proc_ticks "$TARGET_PID")
    log "am-bench against $name"
    line=$(timeout $((DURATION + 600)) "$WORK/am-bench" run --url "http://127.0.0.1:$port" --target "$name" \
        --pid "$TARGET_PID" --webhook-listen "127.0.0.1:$HOOK_PORT" --connections "$CONNECTIONS" \
        --alerts "$ALERTS" --groups "$GROUPS_N" --batch "$BATCH" --duration-secs "$DURATION" \
        --group-wait-ms "$GROUP_WAIT_MS" --latency-groups "$LATENCY_GROUPS" \
        2> >(tee -a "$OUT/am-bench.log" >&2)) || rc=$?
    t1=$(proc_ticks "$TARGET_PID")
    hwm=$(status_kib "$TARGET_PID" VmHWM)
    stop_target "$TARGET_PID" "$name"
    TARGET_PID=""
    if [[ "$rc" != 0 || -z "$line" ]]; then
        note "$name run $run: am-bench exited with $rc"
        return 0
    fi
    # The whole run: startup excluded (ticks from after readiness), stop excluded.
    jq -c --argjson ticks "$((t1 - t0))" --argjson hwm "${hwm:-0}" --argjson run "$run" \
        '. + {run: $run, total_cpu_s: ($ticks / 100), peak_rss_mib: (($hwm / 1024 * 10 | round) / 10)}' \
        <<<"$line" >>"$RESULTS"
    rm -rf "$data"
}

for ((r = 1; r <= REPEAT; r++)); do
    for t in "${WANT[@]}"; do
        run_target "$t" "$r"
    done
done

"$WORK/am-bench" report --results "$RESULTS" >"$OUT/report.md" || note "report failed"
echo >&2
log "results: $OUT"
cat "$OUT/report.md"
if [[ -s "$NOTES" ]]; then
    echo
    echo "notes:"
    sed 's/^/- /' "$NOTES"
fi
exit 0
}
