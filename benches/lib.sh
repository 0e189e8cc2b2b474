# Shared shell helpers of the benchmark scripts (sourced, not run). The caller sets OUT, NOTES,
# WORK, TARGET_PID (or TARGET_PIDS, space-separated, for a target of several processes),
# WAIT_OTHERS, SETTLE_MAX and READY_TIMEOUT before using them.

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
note() { log "NOTE: $*"; echo "$*" >>"$NOTES"; }

# Machine facts and the command line, for the results directory.
machine_info() { # root command...
    local root="$1"; shift
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
        "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')," \
        "model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')," \
        "$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') MHz)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "git: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "prometheus: $(/usr/bin/prometheus --version 2>&1 | head -1)"
    echo "victoria-metrics: $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)"
    echo "command: $*"
}

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

cpu_busy_pct() { # busy share of all CPUs over one second, percent
    local a b
    a=($(grep '^cpu ' /proc/stat)); sleep 1; b=($(grep '^cpu ' /proc/stat))
    local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
    local total=$(( busy + (b[4]+b[5]) - (a[4]+a[5]) ))
    (( total > 0 )) && echo $(( 100 * busy / total )) || echo 0
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Other benchmark processes (not ours) that used more than 2% of a core over the last 2 seconds.
busy_others() {
    local pids p out=""
    pids=$(pgrep -f 'ingest-bench|query-bench|victoria-metrics|prometheus --config' || true)
    declare -A t0=()
    for p in $pids; do
        [[ "$p" == "${TARGET_PID:-}" ]] && continue
        [[ " ${TARGET_PIDS:-} " == *" $p "* ]] && continue
        t0[$p]=$(proc_ticks "$p")
    done
    sleep 2
    for p in "${!t0[@]}"; do
        local d=$(( $(proc_ticks "$p") - ${t0[$p]} ))
        (( d > 4 )) && out+="$p:$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80) "
    done
    echo "$out"
}

# Waits until no other benchmark is busy and the machine is idle (< 10% busy apart from nothing of ours).
wait_quiet() { # what
    local start=$SECONDS others pct
    while :; do
        others=$(busy_others)
        if [[ -z "$others" ]]; then
            pct=$(cpu_busy_pct)
            (( pct < 10 )) && return 0
        else
            pct="?"
        fi
        if (( SECONDS - start >= WAIT_OTHERS )); then
            note "$1: still not quiet after ${WAIT_OTHERS}s (busy ${pct}%, others: ${others:-none}); going on"
            return 0
        fi
        log "waiting before $1: machine ${pct}% busy${others:+, other benchmarks busy: $others}"
        sleep 10
    done
}

# After loading: wait until the target itself has finished its background work (compaction, merges).
wait_settled() { # pid name
    local start=$SECONDS t0 t1
    while (( SECONDS - start < SETTLE_MAX )); do
        t0=$(proc_ticks "$1"); sleep 5; t1=$(proc_ticks "$1")
        # < 5% of a core over 5 s
        (( t1 - t0 < 25 )) && { log "$2 settled after $((SECONDS - start)) s"; return 0; }
    done
    note "$2 still busy ${SETTLE_MAX}s after loading"
}

wait_ready() { # url pid name
    local deadline=$((SECONDS + READY_TIMEOUT))
    while (( SECONDS < deadline )); do
        kill -0 "$2" 2>/dev/null || { log "$3 exited during startup"; return 1; }
        curl -sf -o /dev/null --max-time 2 "$1" && return 0
        sleep 0.3
    done
    log "$3 not ready after ${READY_TIMEOUT}s"
    return 1
}

stop_target() { # pid name
    kill -TERM "$1" 2>/dev/null || return 0
    local i
    for i in $(seq 1 300); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.2
    done
    note "$2 did not stop within 60 s of SIGTERM: killed"
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

