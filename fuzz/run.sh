#!/usr/bin/env bash
# The long fuzzing runs: every cargo-fuzz target (or one) for RUNS inputs (default 10 million),
# with libFuzzer's limits on memory, run time and input size. See docs/security.md, "Fuzzing".
#
#   fuzz/run.sh                       # every target, 10M inputs each
#   fuzz/run.sh promql 1000000        # one target, 1M inputs
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Environment:
#   STRATA_FUZZ_DIR    working directory (default $HOME/.cache/strata-fuzz): the build, each
#                      target's growing corpus, findings and logs; nothing is written to the tree
#   SANITIZER          address (default: catches out-of-bounds accesses in unsafe and C code,
#                      and single mallocs over -malloc_limit_mb) or none (about twice as fast)
#   CHUNK              inputs per libFuzzer process (default 1000000): the run is a sequence of
#                      processes that resume from the working corpus, so it can be interrupted
#   FRESH              1: start the count again (the old ledger is kept aside); unset: a run
#                      resumes, counting the inputs its target's ledger already holds
#   PAUSE_FILE         while this file exists the fuzzer is stopped (SIGSTOP) and then resumed
#                      (a shared machine's benchmark window); unset: never paused
#
# Each finished process appends a line to $STRATA_FUZZ_DIR/work/<target>/ledger (time, inputs,
# seconds, libFuzzer's rate and coverage, exit status, the commit it was built from), so that a
# run interrupted by a reboot or a stop continues where it was; `fuzz/run.sh status` prints
# every target's totals from the ledgers.
#
# A finding stops the target's run: the input is in $STRATA_FUZZ_DIR/work/<target>/artifacts/.
# Reproduce it with `cargo +nightly fuzz run <target> <file>`, or add it to
# fuzz/corpus/<target>/ so that the stable replay test (tests/e2e/fuzz_replay.rs) runs it.
set -euo pipefail
cd "$(dirname "$0")"

# Longest input per target; the same values as `max_len` in crates/fuzz/src/lib.rs (a test
# checks that they agree).
declare -A MAX_LEN=(
  [remote_write_v1]=65536
  [remote_write_v2]=65536
  [snappy_body]=65536
  [promql]=4096
  [parquet_block]=32768
  [wal_record]=65536
  [alertmanager_config]=16384
)
TARGETS=(remote_write_v1 remote_write_v2 snappy_body promql parquet_block wal_record alertmanager_config)

target_arg=${1:-all}
runs=${2:-10000000}
dir=${STRATA_FUZZ_DIR:-$HOME/.cache/strata-fuzz}

# Totals of one target's ledger: inputs, seconds, and the last line's coverage and commit.
ledger_totals() {
  awk '!/^#/ && NF {n += $3; s += $4; cov = $6; ft = $7; corp = $8; c = $10; if ($9 != 0) bad++}
    END {printf "%d inputs in %d s (%d exec/s), cov %s ft %s corpus %s, last build %s, %d chunk(s) with findings\n",
      n, s, (s ? n / s : 0), cov, ft, corp, c, bad}' "$1"
}

if [[ $target_arg == status ]]; then
  for t in "${TARGETS[@]}"; do
    l="$dir/work/$t/ledger"
    if [[ -f $l ]]; then echo "$t: $(ledger_totals "$l")"; else echo "$t: no ledger"; fi
  done
  exit 0
fi
sanitizer=${SANITIZER:-address}
chunk=${CHUNK:-1000000}
pause_file=${PAUSE_FILE:-}
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- .. 2>/dev/null || commit="$commit+dirty"

if [[ $target_arg == all ]]; then
  targets=("${TARGETS[@]}")
elif [[ -n ${MAX_LEN[$target_arg]:-} ]]; then
  targets=("$target_arg")
else
  echo "unknown target $target_arg (one of: ${TARGETS[*]})" >&2
  exit 2
fi

echo "==> building the fuzz targets (sanitizer: $sanitizer)"
# -O: optimized; -a: debug assertions and overflow checks on, so that an arithmetic overflow
# is a finding rather than a silently wrong value.
# One build directory per sanitizer: switching rebuilds everything otherwise.
build_dir="$dir/libfuzzer"
[[ $sanitizer == address ]] || build_dir="$dir/libfuzzer-$sanitizer"
build_target=()
[[ ${#targets[@]} == 1 ]] && build_target=("${targets[0]}")
nice -n 10 cargo +nightly fuzz build -O -a --sanitizer "$sanitizer" --target-dir "$build_dir" \
  "${build_target[@]}"
bin_dir="$build_dir/$triple/release"

# The upstream PromQL test suite's queries (../shared/promqltest, data under Apache 2.0) seed
# the promql target from outside the tree instead of being copied into it.
promqltest_seeds() {
  local out=$1 src=../../shared/promqltest
  mkdir -p "$out"
  [[ -d $src ]] || return 0
  local i=0
  while IFS= read -r q; do
    printf '%s' "$q" > "$out/upstream-$i.txt"
    i=$((i + 1))
  done < <(sed -nE 's/^[[:space:]]*eval(_fail|_warn|_info|_ordered)?[[:space:]]+(instant|range)[[:space:]]+(at[[:space:]]+[^[:space:]]+|from[[:space:]]+[^[:space:]]+[[:space:]]+to[[:space:]]+[^[:space:]]+[[:space:]]+step[[:space:]]+[^[:space:]]+)[[:space:]]+(.*)$/\4/p' "$src"/*.test | sort -u)
}

# Runs one libFuzzer process (output to the file $1) in the background and waits for it,
# stopping it while the pause file exists; the seconds it spent stopped go to the file $2.
# Prints its exit status.
run_paused() {
  local out=$1 paused_file=$2
  shift 2
  "$@" >"$out" 2>&1 &
  local pid=$! stopped=0 paused=0
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -n $pause_file && -e $pause_file && $stopped == 0 ]]; then
      kill -STOP "$pid" 2>/dev/null || true
      stopped=1
    elif [[ $stopped == 1 && ( -z $pause_file || ! -e $pause_file ) ]]; then
      kill -CONT "$pid" 2>/dev/null || true
      stopped=0
    fi
    sleep 2
    [[ $stopped == 1 ]] && paused=$((paused + 2))
  done
  echo "$paused" > "$paused_file"
  local status=0
  wait "$pid" || status=$?
  echo "$status"
}

summary=()
for t in "${targets[@]}"; do
  work="$dir/work/$t"
  mkdir -p "$work/corpus" "$work/artifacts"
  seeds=("corpus/$t")
  if [[ $t == promql ]]; then
    promqltest_seeds "$work/promqltest-seeds"
    seeds+=("$work/promqltest-seeds")
  fi
  dict=()
  [[ -f dict/$t.dict ]] && dict=("-dict=dict/$t.dict")
  log="$work/run.log"
  ledger="$work/ledger"
  if [[ ${FRESH:-} == 1 && -f $ledger ]]; then
    mv "$ledger" "$ledger.$(date +%Y%m%dT%H%M%S)"
    : > "$log"
  fi
  [[ -f $ledger ]] || echo "# unix_time target inputs seconds exec_per_s cov ft corpus status commit" > "$ledger"
  done_runs=$(awk '!/^#/ && NF {n += $3} END {print n + 0}' "$ledger")
  status=0
  started=$SECONDS
  echo "==> $t: $runs inputs in chunks of $chunk, $done_runs already in the ledger (log: $log)"
  while (( done_runs < runs )); do
    n=$(( runs - done_runs < chunk ? runs - done_runs : chunk ))
    chunk_log="$work/chunk.log"
    chunk_started=$SECONDS
    status=$(run_paused "$chunk_log" "$work/paused" nice -n 19 "$bin_dir/$t" "$work/corpus" "${seeds[@]}" \
      -runs="$n" -max_len="${MAX_LEN[$t]}" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
      -artifact_prefix="$work/artifacts/" -print_final_stats=1 "${dict[@]}")
    cat "$chunk_log" >> "$log"
    # Running time: the seconds the process spent stopped for a benchmark window do not count.
    chunk_secs=$(( SECONDS - chunk_started - $(cat "$work/paused") ))
    if [[ $status != 0 ]]; then
      # A timeout while the process was stopped is the pause, not a hang: confirm it alone.
      artifact=$(sed -nE 's/.*Test unit written to (.*)$/\1/p' "$chunk_log" | tail -1)
      if grep -q 'ALARM: working on the last Unit for' "$chunk_log" && [[ -n $artifact ]] &&
        "$bin_dir/$t" -timeout=10 -runs=3 "$artifact" >/dev/null 2>&1; then
        echo "    (a timeout that does not reproduce: the process was paused; continuing)"
        rm -f "$artifact"
        status=0
      else
        echo "    FINDING in $t: see $chunk_log and $work/artifacts/"
        executed=$(grep -oE '^#[0-9]+' "$chunk_log" | tail -1 | tr -d '#')
        echo "$(date +%s) $t ${executed:-0} $chunk_secs 0 - - - $status $commit" >> "$ledger"
        break
      fi
    fi
    executed=$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]+([0-9]+)/\1/p' "$chunk_log" | tail -1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]+([0-9]+)/\1/p' "$chunk_log" | tail -1)
    line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$chunk_log" | tail -1 || true)
    read -r cov ft corp < <(sed -nE 's/.*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3/p' <<<"$line"; echo) || true
    echo "$(date +%s) $t ${executed:-0} $chunk_secs ${rate:-0} ${cov:--} ${ft:--} ${corp:--} $status $commit" >> "$ledger"
    done_runs=$(( done_runs + ${executed:-0} ))
    echo "    $done_runs / $runs  ${line}"
  done
  summary+=("$t: $(ledger_totals "$ledger"); this invocation $(( SECONDS - started )) s, exit status $status")
done

echo "==> summary"
printf '  %s\n' "${summary[@]}"
