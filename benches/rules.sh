#!/usr/bin/env bash
# Rule-evaluation benchmark: Strata's ruler vs Prometheus 2.42's rule manager, same data, same rules.
#
# For each target in turn (Prometheus, then Strata `--target=all`): start it on 127.0.0.1 with a fresh data
# dir, load the range-query benchmark's data set (query-bench load: 3 metrics x SCALE series, the last
# POINTS samples at 15 s ending 2-3 minutes ago), install NGROUPS rule groups of 10 rules each (6 recording,
# 4 alerting; every group reads its own instances, so the groups together read every series), wait until
# every group has run and WARM seconds more, then count rule evaluations, failures, missed iterations and
# the process's CPU over MEASURE seconds. Prometheus gets its rules by a rule file and /-/reload, Strata by
# the configuration API (one POST per group). Afterwards the recorded series of both are compared (count
# and values of one recording rule at one time).
#
#   benches/rules.sh [--scale 34000] [--groups 1000] [--interval 10s] [--measure 60] [--out DIR] [--no-build]
# Everything listens on loopback only; every step has a time limit.
set -euo pipefail

SCALE=34000
NGROUPS=1000
INTERVAL=10s
POINTS=161
WARM=20
MEASURE=60
SEED=1
OUT=""
BUILD=1
PORT_BASE=19600
WAIT_OTHERS=600
READY_TIMEOUT=180
SETTLE_MAX=600
TARGETS="prometheus,strata"
ORIG_ARGS="$*"

usage() {
    cat <<EOF
usage: $0 [options]
  --scale N        series per metric, 3 metrics (default $SCALE; a multiple of 40)
  --groups N       rule groups of 10 rules (default $NGROUPS)
  --interval D     every group's evaluation interval (default $INTERVAL)
  --points N       samples per series, 15 s apart (default $POINTS = 40 min: the 15m windows stay full)
  --warm S         seconds between the first evaluation of every group and the measurement (default $WARM)
  --measure S      measured seconds (default $MEASURE)
  --targets LIST   prometheus, strata (default $TARGETS)
  --out DIR        results directory (default: a new dir under \${TMPDIR:-/tmp})
  --no-build       use the binaries already in \$CARGO_TARGET_DIR/release
  --port-base N    ports N (strata), N+2 (prometheus) (default $PORT_BASE)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --groups) NGROUPS="$2"; shift 2 ;;
        --interval) INTERVAL="$2"; shift 2 ;;
        --points) POINTS="$2"; shift 2 ;;
        --warm) WARM="$2"; shift 2 ;;
        --measure) MEASURE="$2"; shift 2 ;;
        --targets) TARGETS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
STRATA_BIN="$TARGET_DIR/release/strata"
BENCH="$TARGET_DIR/release/query-bench"

[[ -n "$OUT" ]] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-rules-bench.XXXXXX")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-rules-work.XXXXXX")"
NOTES="$OUT/notes.txt"
touch "$NOTES" "$OUT/results.jsonl"

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

machine_info "$ROOT" "$0 $ORIG_ARGS" >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

if [[ "$BUILD" == 1 ]]; then
    log "cargo build --release -p strata -p strata-benches"
    (cd "$ROOT" && cargo build --release -p strata -p strata-benches 2>"$OUT/build.log") \
        || { tail -30 "$OUT/build.log" >&2; exit 1; }
fi
for b in "$BENCH" "$STRATA_BIN" /usr/bin/prometheus; do
    [[ -x "$b" ]] || { echo "missing $b" >&2; exit 1; }
done
cp "$BENCH" "$WORK/query-bench"; BENCH="$WORK/query-bench"
cp "$STRATA_BIN" "$WORK/strata"
echo "strata binary: $STRATA_BIN, built $(date -u -r "$STRATA_BIN" +%FT%TZ), sha256 $(sha256sum "$STRATA_BIN" | cut -c1-16)" >>"$OUT/machine.txt"
STRATA_BIN="$WORK/strata"

# Each target gets data ending 2-3 minutes before its own load (data_args), so that both evaluate
# their rules over windows equally full.
data_args() {
    END_MS=$("$BENCH" end-ms)
    DATA_ARGS=(--scale "$SCALE" --seed "$SEED" --points "$POINTS" --end-ms "$END_MS")
    echo "$1: data ends at $END_MS" >>"$OUT/machine.txt"
}
TAG=$( (( SCALE % 1000 == 0 )) && echo "$((SCALE / 1000))k" || echo "$SCALE")
echo "scale $SCALE ($((3 * SCALE)) series); $NGROUPS groups x 10 rules every $INTERVAL" >>"$OUT/machine.txt"

# The rules. Group g reads host g, API instance g and the host 7g+3 (modulo their counts); the instance
# names are read back from the loaded target, so the groups are the same for both targets. Every rule
# reads a 15m window: the data ends when the script starts, and the second target evaluates several
# minutes later than the first; an instant selector (5m lookback) would find nothing there and make its
# rules cheaper.
write_rules() { # base_url
    local base="$1"
    local m
    for m in "x_${TAG}_total" "y_${TAG}_bucket" "z_${TAG}"; do
        curl -sf --max-time 60 -G "$base/api/v1/label/instance/values" --data-urlencode "match[]=$m" \
            >"$WORK/instances-${m:0:1}.json"
    done
    python3 - "$WORK" "$NGROUPS" "$INTERVAL" "$TAG" <<'PY'
import json, os, sys
work, groups, interval, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
inst = {m: sorted(json.load(open(f"{work}/instances-{m}.json"))["data"]) for m in "xyz"}
assert all(inst.values()), f"no instances: { {m: len(v) for m, v in inst.items()} }"
x, y, z = f"x_{tag}_total", f"y_{tag}_bucket", f"z_{tag}"
os.makedirs(f"{work}/groups", exist_ok=True)
def group(g):
    # h, h2: CPU hosts; a: an API instance; d, d2: hosts with disks.
    h, h2 = inst["x"][g % len(inst["x"])], inst["x"][(7 * g + 3) % len(inst["x"])]
    a = inst["y"][g % len(inst["y"])]
    d, d2 = inst["z"][g % len(inst["z"])], inst["z"][(7 * g + 3) % len(inst["z"])]
    rules = [
        ("record", "bench:cpu_rate:sum_mode", f'sum by (mode) (rate({x}{{instance="{h}"}}[15m]))', None),
        ("record", "bench:cpu_busy:ratio", f'1 - avg(rate({x}{{instance="{h2}",mode="idle"}}[15m]))', None),
        ("record", "bench:req_p90", f'histogram_quantile(0.9, sum by (le) (rate({y}{{instance="{a}"}}[15m])))', None),
        ("record", "bench:req_rate:sum_handler", f'sum by (handler) (rate({y}{{instance="{a}",le="+Inf"}}[15m]))', None),
        ("record", "bench:bytes:max", f'max(last_over_time({z}{{instance="{d}"}}[15m]))', None),
        ("record", "bench:bytes:deriv", f'sum(deriv({z}{{instance="{d2}"}}[15m]))', None),
        ("alert", "CpuBusy", f'sum by (instance) (rate({x}{{instance="{h}",mode!="idle"}}[15m])) > 0.5', "1m"),
        ("alert", "BytesHigh", f'last_over_time({z}{{instance="{d}"}}[15m]) > 0', None),
        ("alert", "SlowRequests", f'histogram_quantile(0.99, sum by (le) (rate({y}{{instance="{a}"}}[15m]))) > 1e9', "5m"),
        ("alert", "HostAbsent", f'absent_over_time({x}{{instance="{h2}",mode="user"}}[15m])', None),
    ]
    lines = [f"name: g{g:05d}", f"interval: {interval}", "rules:"]
    for kind, name, expr, for_ in rules:
        lines.append(f"  - {kind}: {name}")
        lines.append(f"    expr: '{expr}'")
        if for_:
            lines.append(f"    for: {for_}")
        # The group's label keeps the groups' recorded series apart.
        if kind == "alert":
            lines.append(f"    labels: {{severity: page, bench_group: g{g:05d}}}")
            lines.append("    annotations: {summary: '{{ $labels.instance }} at {{ $value | humanize }}'}")
        else:
            lines.append(f"    labels: {{bench_group: g{g:05d}}}")
    return "\n".join(lines) + "\n"
with open(f"{work}/rules.yml", "w") as all_:
    all_.write("groups:\n")
    for g in range(groups):
        text = group(g)
        open(f"{work}/groups/g{g:05d}.yml", "w").write(text)
        first, *rest = text.splitlines()
        all_.write(f"  - {first}\n" + "".join(f"    {l}\n" for l in rest))
print(f"{groups} groups over instances: " + ", ".join(f"{m} {len(v)}" for m, v in inst.items()),
      file=sys.stderr)
PY
}

# Sum of a counter over all its series in a /metrics text.
metric_sum() { # text name
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 {s += $NF} END {printf "%.0f\n", s}' <<<"$1"
}

measure() { # name base pid
    local name="$1" base="$2" pid="$3" deadline m evals
    # Every group ran at least once: as many evaluations as rules.
    deadline=$((SECONDS + 600))
    while :; do
        m=$(curl -s --max-time 30 "$base/metrics" || true)
        evals=$(metric_sum "$m" prometheus_rule_evaluations_total)
        (( evals >= NGROUPS * 10 )) && break
        (( SECONDS < deadline )) || { note "$name: only $evals evaluations after 600 s"; break; }
        sleep 2
    done
    log "$name: every group evaluated; warming up ${WARM}s"
    sleep "$WARM"
    local m0 m1 c0 c1 t0 t1
    m0=$(curl -s --max-time 30 "$base/metrics"); c0=$(proc_ticks "$pid"); t0=$(date +%s.%N)
    sleep "$MEASURE"
    m1=$(curl -s --max-time 30 "$base/metrics"); c1=$(proc_ticks "$pid"); t1=$(date +%s.%N)
    local hz; hz=$(getconf CLK_TCK)
    python3 - "$name" "$t0" "$t1" "$c0" "$c1" "$hz" \
        "$(metric_sum "$m0" prometheus_rule_evaluations_total)" "$(metric_sum "$m1" prometheus_rule_evaluations_total)" \
        "$(metric_sum "$m0" prometheus_rule_evaluation_failures_total)" "$(metric_sum "$m1" prometheus_rule_evaluation_failures_total)" \
        "$(metric_sum "$m0" prometheus_rule_group_iterations_missed_total)" "$(metric_sum "$m1" prometheus_rule_group_iterations_missed_total)" \
        "$(awk '$1 == "VmRSS:" {print $2 * 1024}' "/proc/$pid/status")" \
        >>"$OUT/results.jsonl" <<'PY'
import json, sys
name, t0, t1, c0, c1, hz, e0, e1, f0, f1, x0, x1, rss = sys.argv[1:]
secs = float(t1) - float(t0)
evals = int(e1) - int(e0)
cpu = (int(c1) - int(c0)) / int(hz)
print(json.dumps({
    "target": name, "seconds": round(secs, 2), "evaluations": evals,
    "evaluations_per_s": round(evals / secs, 1), "cpu_s": round(cpu, 2),
    "cpu_us_per_evaluation": round(1e6 * cpu / evals, 1) if evals else None,
    "failures": int(f1) - int(f0), "missed_iterations": int(x1) - int(x0),
    "rss_bytes": int(float(rss)) if rss else None,
}))
PY
    tail -1 "$OUT/results.jsonl" >&2
}

# Recorded series per rule name, now (their values depend on each target's evaluation times).
recorded() { # base file
    curl -sf --max-time 60 "$1/api/v1/query" \
        --data-urlencode 'query=count by (__name__) ({__name__=~"bench:.+"})' >"$2" || echo '{}' >"$2"
}

run_prometheus() {
    local port=$((PORT_BASE + 2)) base data
    base="http://127.0.0.1:$port"; data="$WORK/prometheus"
    mkdir -p "$data"
    printf 'groups: []\n' >"$WORK/prom-rules.yml"
    printf 'global:\n  scrape_interval: 15s\n  evaluation_interval: %s\nrule_files: [%s]\nscrape_configs: []\n' \
        "$INTERVAL" "$WORK/prom-rules.yml" >"$WORK/prometheus.yml"
    local cmd=(/usr/bin/prometheus "--config.file=$WORK/prometheus.yml" "--storage.tsdb.path=$data"
        "--web.listen-address=127.0.0.1:$port" --web.enable-remote-write-receiver --web.enable-lifecycle
        --query.max-samples=1000000000 --storage.tsdb.retention.time=10y)
    wait_quiet "prometheus load"
    echo "prometheus: ${cmd[*]}" >>"$OUT/commands.txt"
    "${cmd[@]}" >>"$OUT/prometheus.log" 2>&1 &
    TARGET_PID=$!
    wait_ready "$base/-/ready" "$TARGET_PID" prometheus || { note "prometheus did not start"; return 1; }
    data_args prometheus
    "$BENCH" load "${DATA_ARGS[@]}" --url "$base/api/v1/write" --target prometheus --shards 4 \
        2> >(tee -a "$OUT/load.log" >&2) >/dev/null
    wait_settled "$TARGET_PID" prometheus
    write_rules "$base"
    cp "$WORK/rules.yml" "$WORK/prom-rules.yml"
    cp "$WORK/rules.yml" "$OUT/rules.yml"
    /usr/bin/promtool check rules "$WORK/prom-rules.yml" >"$OUT/promtool-check.txt" 2>&1 \
        || { note "promtool check rules failed: $(tail -3 "$OUT/promtool-check.txt")"; return 1; }
    curl -sf -X POST --max-time 60 "$base/-/reload" || { note "prometheus reload failed"; return 1; }
    measure prometheus "$base" "$TARGET_PID"
    recorded "$base" "$OUT/prometheus-recorded.json"
    stop_target "$TARGET_PID" prometheus; TARGET_PID=""
}

run_strata() {
    local port=$PORT_BASE base data
    base="http://127.0.0.1:$port"; data="$WORK/strata-data"
    mkdir -p "$data"
    # Groups per tenant unlimited (default 70); each POST loads its group at once, and the
    # bucket is polled at the default interval (60 s).
    cat >"$WORK/strata.yml" <<EOF
ruler:
  max_rule_groups_per_tenant: 0
  evaluation_interval: $INTERVAL
EOF
    local cmd=("$STRATA_BIN" --config "$WORK/strata.yml" --data-dir "$data" --http-listen-address "127.0.0.1:$port")
    wait_quiet "strata load"
    echo "strata: ${cmd[*]}" >>"$OUT/commands.txt"
    "${cmd[@]}" >>"$OUT/strata.log" 2>&1 &
    TARGET_PID=$!
    wait_ready "$base/ready" "$TARGET_PID" strata || { note "strata did not start"; return 1; }
    data_args strata
    "$BENCH" load "${DATA_ARGS[@]}" --url "$base/api/v1/push" --target strata --shards 4 \
        2> >(tee -a "$OUT/load.log" >&2) >/dev/null
    wait_settled "$TARGET_PID" strata
    [[ -f "$WORK/rules.yml" ]] || write_rules "$base"
    log "strata: posting $NGROUPS groups"
    local posted
    posted=$(find "$WORK/groups" -name '*.yml' -print0 | xargs -0 -P 4 -I{} \
        curl -sf -o /dev/null -w '%{http_code}\n' -X POST --max-time 30 --data-binary @{} \
        "$base/prometheus/config/v1/rules/bench" | grep -c '^202$' || true)
    (( posted == NGROUPS )) || { note "strata accepted $posted of $NGROUPS groups"; return 1; }
    measure strata "$base" "$TARGET_PID"
    recorded "$base" "$OUT/strata-recorded.json"
    stop_target "$TARGET_PID" strata; TARGET_PID=""
}

IFS=',' read -r -a WANT <<<"$TARGETS"
for t in "${WANT[@]}"; do
    case "$t" in
        prometheus|prom) run_prometheus ;;
        strata) run_strata ;;
        *) echo "unknown target $t" >&2; exit 2 ;;
    esac
done

python3 - "$OUT" <<'PY' | tee "$OUT/report.md"
import json, sys, os
out = sys.argv[1]
rows = {}
for line in open(f"{out}/results.jsonl"):
    r = json.loads(line); rows[r["target"]] = r
print("| target | evaluations/s | CPU s | CPU µs / evaluation | failures | missed iterations | RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|")
for t, r in rows.items():
    rss = f'{r["rss_bytes"] / 2**20:.0f}' if r.get("rss_bytes") else "–"
    print(f'| {t} | {r["evaluations_per_s"]} | {r["cpu_s"]} | {r["cpu_us_per_evaluation"]} | {r["failures"]} | {r["missed_iterations"]} | {rss} |')
if "strata" in rows and "prometheus" in rows and rows["strata"]["cpu_us_per_evaluation"]:
    s, p = rows["strata"], rows["prometheus"]
    print(f'\nPrometheus CPU per evaluation ÷ Strata\'s: {p["cpu_us_per_evaluation"] / s["cpu_us_per_evaluation"]:.2f}×')
def counts(path):
    try:
        d = json.load(open(path))["data"]["result"]
    except Exception:
        return None
    return {x["metric"].get("__name__", "?"): x["value"][1] for x in d}
print("\nRecorded series per rule after the measurement (each should equal the number of groups):\n")
for t in ("prometheus", "strata"):
    c = counts(f"{out}/{t}-recorded.json")
    if c is not None:
        print(f"- {t}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
PY
log "results: $OUT"
