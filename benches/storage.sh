#!/usr/bin/env bash
# Long-term storage benchmark: bytes per sample of persisted data and range-query latency from the head, from
# blocks on the local filesystem and from blocks on S3, side by side with Prometheus 2.42 and VictoriaMetrics 1.79
# on the same seeded data set (the query benchmark's: node_exporter-like CPU counters, classic histograms and
# byte gauges, 15 s scrapes), plus freshness (push → block listed in the bucket index).
#
#   benches/storage.sh [--scale 3400] [--hours 24] [--runs 5] [--out DIR] [--no-build] [--skip-freshness]
#
# Per target, in turn, on 127.0.0.1 with a fresh data dir (each stopped by pid when done):
# - prometheus: load, wait for its compactions, measure its block directories (index, chunks, meta, tombstones)
#   against the samples their meta.json count; time the queries (hot).
# - victoriametrics: load, force flush + merge, measure its whole data directory against all samples loaded;
#   time the queries (nocache=1).
# - strata-head: load with blocks cut only after 24 h: time the queries from the head.
# - strata: load with 2 h blocks shipped to a filesystem bucket and compacted; measure every object of the
#   blocks that are not marked for deletion (series file, samples file, meta.json) against their samples;
#   restart (cold caches, no local blocks) and time the queries: first run cold, then warm.
# - strata-s3: the same bucket copied into an S3-compatible server (s3-server, s3s-fs) on 127.0.0.1; restart
#   strata on it with an empty data dir; time cold then warm.
# - freshness: strata with 1-minute blocks; see freshness-bench.
set -euo pipefail

SCALE=3400
HOURS=24
RUNS=5
SEED=1
SHARDS=4
OUT=""
BUILD=1
FRESHNESS=1
MAX_LOAD=3600
READY_TIMEOUT=180
SETTLE_MAX=900
WAIT_OTHERS=1800
PORT_BASE=19700
ORIG_ARGS="$*"

usage() {
    cat <<EOF
usage: $0 [options]
  --scale N          series per metric (3 metrics; default $SCALE = $((SCALE * 3)) series; a multiple of 40)
  --hours H          hours of data at 15 s (default $HOURS)
  --runs N           timed runs per query (default $RUNS)
  --seed N           data set seed (default $SEED)
  --out DIR          results directory (default: a new dir under \${TMPDIR:-/tmp})
  --no-build         use the binaries already in \$CARGO_TARGET_DIR/release
  --skip-freshness   do not run the freshness measurement
  --port-base N      ports N..N+5 (default $PORT_BASE)
  --wait-others S    before loading and timing, wait up to S s for the machine to be quiet (default $WAIT_OTHERS)
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --scale) SCALE="$2"; shift 2 ;;
        --hours) HOURS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --skip-freshness) FRESHNESS=0; shift ;;
        --port-base) PORT_BASE="$2"; shift 2 ;;
        --wait-others) WAIT_OTHERS="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=benches/lib.sh
source "$ROOT/benches/lib.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
REL="$CARGO_TARGET_DIR/release"

[[ -n "$OUT" ]] || OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-storage-bench.XXXXXX")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-storage-work.XXXXXX")"
NOTES="$OUT/notes.txt"
touch "$NOTES" "$OUT/sizes.jsonl" "$OUT/timings.jsonl" "$OUT/load.jsonl"
TARGET_PID=""
S3_PID=""
cleanup() {
    for p in "$TARGET_PID" "$S3_PID"; do
        if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            sleep 2
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
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
for b in strata query-bench s3-server freshness-bench; do
    [[ -x "$REL/$b" ]] || { echo "missing $REL/$b" >&2; exit 1; }
    cp "$REL/$b" "$WORK/$b"
done
[[ -x /usr/bin/prometheus && -x /usr/bin/victoria-metrics ]] \
    || { echo "needs /usr/bin/prometheus and /usr/bin/victoria-metrics (apt-get install prometheus victoria-metrics)" >&2; exit 1; }
BENCH="$WORK/query-bench"
STRATA="$WORK/strata"

POINTS=$((HOURS * 240 + 1))
END_MS=$("$BENCH" end-ms)
DATA_ARGS=(--scale "$SCALE" --seed "$SEED" --points "$POINTS" --end-ms "$END_MS")
TOTAL_SAMPLES=$((SCALE * 3 * POINTS))
echo "data: scale $SCALE ($((SCALE * 3)) series), $POINTS points per series at 15 s, $TOTAL_SAMPLES samples, last at $END_MS" \
    | tee -a "$OUT/machine.txt" >&2

S3_PORT=$((PORT_BASE + 5))
S3_YAML="bucket:
  backend: s3
  s3:
    bucket_name: strata
    endpoint: http://127.0.0.1:$S3_PORT
    access_key_id: bench
    secret_access_key: benchsecret
    force_path_style: true
    allow_http: true"

strata_yaml() { # kind (head|blocks|freshness) [extra yaml]
    # grace 15m: the loader sends 10-minute slices from 4 shards, so one shard can be up to a
    # slice ahead of another (real remote-write shards are much closer; the default is 30m).
    local block_range=2h grace=15m idle=30s ship=2s
    case "$1" in
        head) block_range=24h; grace=24h; idle=24h ;;
        freshness) block_range=1m; grace=2s; idle=30s; ship=500ms ;;
    esac
    cat <<EOF
querier:
  max_samples: 1000000000
  query_timeout: 10m
ingester:
  blocks:
    block_range: $block_range
    grace_period: $grace
    idle_timeout: $idle
    ship_interval: $ship
    retention_period: 1s
store_gateway:
  sync_interval: 1s
  # Steady state: compacted-away sources are not read next to their replacement (the default
  # 1h overlap only matters right after a compaction).
  ignore_deletion_marks_delay: 1s
compactor:
  compaction_interval: 5s
${2:-}
EOF
}

start() { # name ready-url cmd...
    local name="$1" ready="$2"; shift 2
    log "starting $name: $*"
    echo "$name: $*" >>"$OUT/commands.txt"
    "$@" >>"$OUT/$name.log" 2>&1 &
    TARGET_PID=$!
    wait_ready "$ready" "$TARGET_PID" "$name" || { tail -20 "$OUT/$name.log" >&2; exit 1; }
}

load() { # name push-url
    log "loading $1"
    timeout $((MAX_LOAD + 120)) "$BENCH" load "${DATA_ARGS[@]}" --url "$2" --target "$1" --shards "$SHARDS" \
        --max-run-secs "$MAX_LOAD" --json-out "$OUT/load.jsonl" 2> >(tee -a "$OUT/load.log" >&2) >/dev/null \
        || note "$1: load exited with an error (see load.jsonl)"
}

timing() { # name base-url warmup runs
    wait_quiet "$1 timing"
    "$BENCH" time "${DATA_ARGS[@]}" --base "$2" --target "$1" --pid "$TARGET_PID" --warmup "$3" --runs "$4" \
        --range-hours 6 --json-out "$OUT/timings.jsonl" >/dev/null || note "$1: timing failed"
}

size_line() { # name bytes samples
    local bps
    bps=$(awk -v b="$2" -v s="$3" 'BEGIN { if (s > 0) printf "%.4f", b / s; else print "null" }')
    echo "{\"target\":\"$1\",\"bytes\":$2,\"samples\":$3,\"bytes_per_sample\":$bps}" | tee -a "$OUT/sizes.jsonl" >&2
}

# Bytes and samples of the complete blocks under a directory of ULID block dirs (Prometheus data dir or
# Strata's tenant prefix); blocks with a deletion mark are skipped; only raw resolution counts samples.
blocks_size() { # dir
    local bytes=0 samples=0 d n s
    for d in "$1"/*/; do
        [[ -f "$d/meta.json" ]] || continue
        [[ -f "$d/deletion-mark.json" ]] && continue
        [[ "$(jq -r '.resolution // 0' "$d/meta.json")" == 0 ]] || continue
        n=$(du -sb --apparent-size "$d" | cut -f1)
        s=$(jq -r '.stats.numSamples' "$d/meta.json")
        bytes=$((bytes + n)); samples=$((samples + s))
    done
    echo "$bytes $samples"
}

# ---------------------------------------------------------------- prometheus
P=$((PORT_BASE + 2))
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$WORK/prometheus.yml"
mkdir -p "$WORK/prometheus"
wait_quiet "prometheus load"
start prometheus "http://127.0.0.1:$P/-/ready" /usr/bin/prometheus "--config.file=$WORK/prometheus.yml" \
    "--storage.tsdb.path=$WORK/prometheus" "--web.listen-address=127.0.0.1:$P" --web.enable-remote-write-receiver \
    --query.max-samples=1000000000 --query.timeout=10m --storage.tsdb.retention.time=10y
load prometheus "http://127.0.0.1:$P/api/v1/write"
wait_settled "$TARGET_PID" prometheus
read -r b s < <(blocks_size "$WORK/prometheus")
size_line prometheus "$b" "$s"
timing prometheus "http://127.0.0.1:$P" 1 "$RUNS"
stop_target "$TARGET_PID" prometheus; TARGET_PID=""
rm -rf "$WORK/prometheus"

# ---------------------------------------------------------------- victoriametrics
V=$((PORT_BASE + 1))
mkdir -p "$WORK/vm"
wait_quiet "victoriametrics load"
start victoriametrics "http://127.0.0.1:$V/health" /usr/bin/victoria-metrics "-storageDataPath=$WORK/vm" \
    "-httpListenAddr=127.0.0.1:$V" -search.maxQueryDuration=10m -retentionPeriod=10y
load victoriametrics "http://127.0.0.1:$V/api/v1/write"
curl -s -o /dev/null --max-time 300 "http://127.0.0.1:$V/internal/force_flush" || true
curl -s -o /dev/null --max-time 1800 "http://127.0.0.1:$V/internal/force_merge" || true
wait_settled "$TARGET_PID" victoriametrics
size_line victoriametrics "$(du -sb --apparent-size "$WORK/vm" | cut -f1)" "$TOTAL_SAMPLES"
timing victoriametrics "http://127.0.0.1:$V" 1 "$RUNS"
stop_target "$TARGET_PID" victoriametrics; TARGET_PID=""
rm -rf "$WORK/vm"

# ---------------------------------------------------------------- strata from the head
S=$PORT_BASE
strata_yaml head >"$WORK/strata-head.yml"
mkdir -p "$WORK/strata-head"
wait_quiet "strata-head load"
start strata-head "http://127.0.0.1:$S/ready" "$STRATA" --config "$WORK/strata-head.yml" \
    --data-dir "$WORK/strata-head" --http-listen-address "127.0.0.1:$S"
load strata-head "http://127.0.0.1:$S/api/v1/push"
wait_settled "$TARGET_PID" strata-head
timing strata-head "http://127.0.0.1:$S" 1 "$RUNS"
stop_target "$TARGET_PID" strata-head; TARGET_PID=""
rm -rf "$WORK/strata-head"

# ---------------------------------------------------------------- strata, blocks on the filesystem
strata_yaml blocks >"$WORK/strata.yml"
mkdir -p "$WORK/strata-data"
wait_quiet "strata load"
start strata "http://127.0.0.1:$S/ready" "$STRATA" --config "$WORK/strata.yml" --data-dir "$WORK/strata-data" \
    --http-listen-address "127.0.0.1:$S"
load strata "http://127.0.0.1:$S/api/v1/push"
# After the load: every finished range is cut (by sample time, then by the idle timeout),
# uploaded and compacted. The range holding the newest samples stays in the head until it ends:
# only blocks are measured, against the samples they hold.
deadline=$((SECONDS + SETTLE_MAX)); last_cut=-1; stable=0
while (( SECONDS < deadline && stable < 4 )); do
    m=$(curl -s "http://127.0.0.1:$S/metrics")
    pending=$(awk '$1 == "strata_ingester_blocks_pending_upload" {print $2}' <<<"$m")
    cut=$(awk '$1 == "strata_ingester_blocks_cut_total" {print $2}' <<<"$m")
    if [[ "${pending:-1}" == 0 && "$cut" == "$last_cut" ]]; then stable=$((stable + 1)); else stable=0; fi
    last_cut=$cut
    sleep 10
done
log "strata: $last_cut blocks cut and uploaded"
wait_settled "$TARGET_PID" strata
read -r b s < <(blocks_size "$WORK/strata-data/bucket/anonymous")
size_line strata "$b" "$s"
echo "strata blocks hold $s of the $TOTAL_SAMPLES samples loaded (the newest range is still in the head)" >>"$NOTES"
stop_target "$TARGET_PID" strata; TARGET_PID=""
# Cold: a restarted process with empty caches and no local blocks.
start strata-fs "http://127.0.0.1:$S/ready" "$STRATA" --config "$WORK/strata.yml" --data-dir "$WORK/strata-data" \
    --http-listen-address "127.0.0.1:$S"
timing strata-fs-cold "http://127.0.0.1:$S" 0 1
timing strata-fs-warm "http://127.0.0.1:$S" 1 "$RUNS"
stop_target "$TARGET_PID" strata-fs; TARGET_PID=""

# ---------------------------------------------------------------- strata, blocks on S3
mkdir -p "$WORK/s3/strata"
cp -a "$WORK/strata-data/bucket/." "$WORK/s3/strata/"
"$WORK/s3-server" --root "$WORK/s3" --bucket strata --listen "127.0.0.1:$S3_PORT" >>"$OUT/s3-server.log" 2>&1 &
S3_PID=$!
sleep 1
strata_yaml blocks "$S3_YAML" >"$WORK/strata-s3.yml"
mkdir -p "$WORK/strata-s3"
start strata-s3 "http://127.0.0.1:$S/ready" "$STRATA" --config "$WORK/strata-s3.yml" --data-dir "$WORK/strata-s3" \
    --http-listen-address "127.0.0.1:$S"
timing strata-s3-cold "http://127.0.0.1:$S" 0 1
timing strata-s3-warm "http://127.0.0.1:$S" 1 "$RUNS"
stop_target "$TARGET_PID" strata-s3; TARGET_PID=""
kill -TERM "$S3_PID" 2>/dev/null || true; wait "$S3_PID" 2>/dev/null || true; S3_PID=""
rm -rf "$WORK/strata-data" "$WORK/strata-s3" "$WORK/s3"

# ---------------------------------------------------------------- freshness
if [[ "$FRESHNESS" == 1 ]]; then
    strata_yaml freshness >"$WORK/strata-fresh.yml"
    mkdir -p "$WORK/strata-fresh"
    start strata-fresh "http://127.0.0.1:$S/ready" "$STRATA" --config "$WORK/strata-fresh.yml" \
        --data-dir "$WORK/strata-fresh" --http-listen-address "127.0.0.1:$S"
    "$WORK/freshness-bench" --url "http://127.0.0.1:$S/api/v1/push" --bucket-dir "$WORK/strata-fresh/bucket" \
        --push-secs 100 --drain-secs 150 | tee "$OUT/freshness.json" >&2 || note "freshness run failed"
    stop_target "$TARGET_PID" strata-fresh; TARGET_PID=""
fi

# ---------------------------------------------------------------- report
{
    echo "## Bytes per sample ($((SCALE * 3)) series, $HOURS h at 15 s, $TOTAL_SAMPLES samples)"
    echo
    echo "| target | bytes | samples | bytes/sample |"
    echo "|---|---:|---:|---:|"
    jq -r '"| \(.target) | \(.bytes) | \(.samples) | \(.bytes_per_sample) |"' "$OUT/sizes.jsonl"
    vm=$(jq -s 'map(select(.target == "victoriametrics"))[0].bytes_per_sample // null' "$OUT/sizes.jsonl")
    pr=$(jq -s 'map(select(.target == "prometheus"))[0].bytes_per_sample // null' "$OUT/sizes.jsonl")
    st=$(jq -s 'map(select(.target == "strata"))[0].bytes_per_sample // null' "$OUT/sizes.jsonl")
    echo
    echo "Strata / VictoriaMetrics: $(jq -n "$st / $vm * 1000 | round / 1000" 2>/dev/null || echo n/a)×;" \
        "Strata / Prometheus: $(jq -n "$st / $pr * 1000 | round / 1000" 2>/dev/null || echo n/a)×"
    echo
    echo "## Range queries over the last 6 h (step 60 s), median seconds"
    echo
    echo "| query | $(jq -rs 'map(.target) | unique | join(" | ")' "$OUT/timings.jsonl") |"
    echo "|---|$(jq -rs 'map(.target) | unique | map("---:") | join("|")' "$OUT/timings.jsonl")|"
    for q in $(jq -rs 'map(.query_id) | unique | .[]' "$OUT/timings.jsonl"); do
        echo "| $q | $(jq -rs --arg q "$q" 'map(select(.query_id == $q)) | group_by(.target)
            | map(last | (.median_s // "err") | tostring) | join(" | ")' "$OUT/timings.jsonl") |"
    done
    if [[ -s "$OUT/freshness.json" ]]; then
        echo
        echo "## Freshness (1 m blocks): push → block listed in the bucket index"
        echo
        jq -r '"min \(.min_s) s, median \(.median_s) s, p90 \(.p90_s) s, max \(.max_s) s over \(.indexed_seconds)/\(.pushed_seconds) pushed seconds"' "$OUT/freshness.json"
    fi
} >"$OUT/report.md"

echo >&2
log "results: $OUT"
cat "$OUT/report.md"
if [[ -s "$NOTES" ]]; then
    echo
    echo "notes:"
    sed 's/^/- /' "$NOTES"
fi
