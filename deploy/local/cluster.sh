#!/usr/bin/env bash
# A Strata cluster on one machine, from the release binary, every process on its own loopback
# address (127.0.0.x), for people trying the cluster and for the chaos tests.
#
#   deploy/local/cluster.sh up DIR            start (or restart) the cluster, print its instances
#   deploy/local/cluster.sh down DIR          stop every process (SIGTERM, then SIGKILL)
#   deploy/local/cluster.sh kill DIR NAME     SIGKILL one process
#   deploy/local/cluster.sh restart DIR NAME [--wipe]
#                                             restart one process (--wipe: with an empty data dir;
#                                             a meta voter is then replaced under a new Raft id)
#   deploy/local/cluster.sh status DIR        print the instances (pids of live processes)
#
# Processes: 3 meta voters, 3 ingesters, 2 distributors, 1 querier, 1 store-gateway,
# 1 compactor and 3 alertmanagers. Push to any distributor's http address
# (`/api/v1/push`), query the querier's (`/api/v1/query`).
#
# Environment: STRATA_BIN (default target/release/strata, built if missing), STRATA_HTTP_PORT
# (8080), STRATA_GRPC_PORT (9095), STRATA_AM_GRPC_PORT (9094), STRATA_HEARTBEAT (5s),
# STRATA_HEARTBEAT_TIMEOUT (30s), STRATA_EXTRA_CONFIG (a YAML file merged into every
# instance's configuration, e.g. block ranges, limits or `ingester: {ring: {replication_factor:
# 1}}`: mappings are merged key by key, anything else replaces the generated value; needs
# python3 with PyYAML, which reads YAML 1.1: quote strings such as on/off/yes/no),
# STRATA_SKIP (comma-separated instance or component names not to run, e.g.
# `alertmanager,compactor`; the meta voters, ingesters and distributors cannot be skipped).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${STRATA_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/strata}"
http_port="${STRATA_HTTP_PORT:-8080}"
grpc_port="${STRATA_GRPC_PORT:-9095}"
am_grpc_port="${STRATA_AM_GRPC_PORT:-9094}"
heartbeat="${STRATA_HEARTBEAT:-5s}"
heartbeat_timeout="${STRATA_HEARTBEAT_TIMEOUT:-30s}"

# name component ip
instances=(
  "meta-1 meta 127.0.0.11"
  "meta-2 meta 127.0.0.12"
  "meta-3 meta 127.0.0.13"
  "ingester-1 ingester 127.0.0.21"
  "ingester-2 ingester 127.0.0.22"
  "ingester-3 ingester 127.0.0.23"
  "distributor-1 distributor 127.0.0.31"
  "distributor-2 distributor 127.0.0.32"
  "querier-1 querier 127.0.0.41"
  "store-gateway-1 store-gateway 127.0.0.51"
  "compactor-1 compactor 127.0.0.61"
  "alertmanager-1 alertmanager 127.0.0.71"
  "alertmanager-2 alertmanager 127.0.0.72"
  "alertmanager-3 alertmanager 127.0.0.73"
)

die() { echo "cluster.sh: $*" >&2; exit 1; }

if [[ -n "${STRATA_SKIP:-}" ]]; then
  skip=",${STRATA_SKIP// /,},"
  kept=()
  for i in "${instances[@]}"; do
    read -r n c _ <<<"$i"
    if [[ "$skip" == *",$n,"* || "$skip" == *",$c,"* ]]; then
      [[ "$c" == meta || "$c" == ingester || "$c" == distributor ]] \
        && die "STRATA_SKIP: $n ($c) cannot be skipped"
      continue
    fi
    kept+=("$i")
  done
  instances=("${kept[@]}")
fi

lookup() { # NAME -> "component ip"
  local i
  for i in "${instances[@]}"; do
    read -r n c ip <<<"$i"
    if [[ "$n" == "$1" ]]; then echo "$c $ip"; return 0; fi
  done
  return 1
}

meta_id() { # DIR NAME -> the voter's current Raft id (a replaced voter gets a new one)
  local f="$1/$2/meta-id"
  if [[ -f "$f" ]]; then cat "$f"; else echo "${2#meta-}"; fi
}

meta_peers() { # DIR -> YAML list of the voters
  local dir="$1" n
  for n in meta-1 meta-2 meta-3; do
    read -r _ ip < <(lookup "$n")
    echo "    - {id: $(meta_id "$dir" "$n"), address: '$ip:$grpc_port'}"
  done
}

# Merges the YAML file EXTRA into the YAML file BASE (mappings key by key, anything else
# replaced) and prints the result: appending would repeat top-level keys, which the config
# loader refuses ("duplicate field").
merge_yaml() { # BASE EXTRA
  python3 - "$1" "$2" <<'PY' || die "STRATA_EXTRA_CONFIG: cannot merge $2 (needs python3 with PyYAML, e.g. Debian python3-yaml)"
import sys
import yaml

def merge(a, b):
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(a.get(k), dict):
            merge(a[k], v)
        else:
            a[k] = v
    return a

with open(sys.argv[1]) as f:
    base = yaml.safe_load(f) or {}
with open(sys.argv[2]) as f:
    extra = yaml.safe_load(f) or {}
if not isinstance(extra, dict):
    sys.exit("not a YAML mapping")
sys.stdout.write(yaml.safe_dump(merge(base, extra), sort_keys=False, default_flow_style=False))
PY
}

write_config() { # DIR NAME BOOTSTRAP
  local dir="$1" name="$2" bootstrap="$3" comp ip
  read -r comp ip < <(lookup "$name")
  mkdir -p "$dir/$name"
  {
    cat <<YAML
data_dir: $dir/$name/data
server:
  http_listen_address: '$ip:$http_port'
  grpc_listen_address: '$ip:$grpc_port'
  graceful_shutdown_timeout: 10s
meta:
  node_id: $( [[ "$comp" == meta ]] && meta_id "$dir" "$name" || echo 1 )
  bootstrap: $bootstrap
  peers:
$(meta_peers "$dir")
bucket:
  filesystem: {directory: $dir/bucket}
ingester:
  ring:
    instance_id: $name
    heartbeat_period: $heartbeat
    heartbeat_timeout: $heartbeat_timeout
    tokens_file: tokens.json
distributor:
  ring:
    instance_id: $name
    heartbeat_period: $heartbeat
    heartbeat_timeout: $heartbeat_timeout
store_gateway:
  ring:
    instance_id: $name
    heartbeat_period: $heartbeat
    heartbeat_timeout: $heartbeat_timeout
YAML
    if [[ "$comp" == alertmanager ]]; then
      cat <<YAML
alertmanager:
  ring:
    enabled: true
    instance_id: $name
    grpc_listen_address: '$ip:$am_grpc_port'
    heartbeat_period: $heartbeat
    heartbeat_timeout: $heartbeat_timeout
    tokens_file: am-tokens.json
YAML
    fi
  } >"$dir/$name/config.yaml"
  if [[ -n "${STRATA_EXTRA_CONFIG:-}" ]]; then
    merge_yaml "$dir/$name/config.yaml" "$STRATA_EXTRA_CONFIG" >"$dir/$name/config.yaml.merged"
    mv "$dir/$name/config.yaml.merged" "$dir/$name/config.yaml"
  fi
}

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

pid_of() { cat "$1/$2/pid" 2>/dev/null || true; }

start_one() { # DIR NAME
  local dir="$1" name="$2" comp ip pid
  read -r comp ip < <(lookup "$name")
  pid="$(pid_of "$dir" "$name")"
  if alive "$pid"; then return 0; fi
  mkdir -p "$dir/$name/data"
  "$bin" --target="$comp" --config "$dir/$name/config.yaml" >>"$dir/$name/log" 2>&1 &
  echo $! >"$dir/$name/pid"
}

wait_ready() { # DIR NAME
  local dir="$1" name="$2" comp ip i
  read -r comp ip < <(lookup "$name")
  for i in $(seq 1 600); do
    if curl -fsS -o /dev/null --max-time 1 "http://$ip:$http_port/ready" 2>/dev/null; then return 0; fi
    alive "$(pid_of "$dir" "$name")" || die "$name exited; see $dir/$name/log: $(tail -n 5 "$dir/$name/log")"
    sleep 0.1
  done
  die "$name not ready after 60s; see $dir/$name/log"
}

print_instances() { # DIR
  local dir="$1" first=1 i n c ip pid grpc
  printf '{"instances": ['
  for i in "${instances[@]}"; do
    read -r n c ip <<<"$i"
    pid="$(pid_of "$dir" "$n")"
    alive "$pid" || pid=null
    grpc="\"$ip:$grpc_port\""
    [[ "$c" == alertmanager ]] && grpc="\"$ip:$am_grpc_port\""
    [[ "$c" == compactor ]] && grpc=null
    ((first)) || printf ', '
    first=0
    printf '{"name": "%s", "component": "%s", "pid": %s, "http": "http://%s:%s", "grpc": %s}' \
      "$n" "$c" "$pid" "$ip" "$http_port" "$grpc"
  done
  printf ']}\n'
}

ensure_bin() { # DIR: the binary of `up` is used by later commands on the same cluster
  if [[ -z "${STRATA_BIN:-}" && -f "$1/bin" ]]; then
    bin="$(cat "$1/bin")"
  fi
  if [[ ! -x "$bin" ]]; then
    [[ -z "${STRATA_BIN:-}" ]] || die "STRATA_BIN=$bin is not executable"
    (cd "$root" && cargo build --release -p strata >&2)
  fi
  echo "$bin" >"$1/bin"
}

meta_admin() { # DIR PATH JSON: POST to the first live voter that answers
  local dir="$1" path="$2" body="$3" n ip
  for n in meta-1 meta-2 meta-3; do
    read -r _ ip < <(lookup "$n")
    if curl -fsS --max-time 10 -XPOST -H 'Content-Type: application/json' \
      -d "$body" "http://$ip:$http_port$path" >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}

cmd_up() {
  local dir="$1" name first=0
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  ensure_bin "$dir"
  [[ -f "$dir/created" ]] || first=1
  for i in "${instances[@]}"; do
    read -r name _ _ <<<"$i"
    # Bootstrap the meta cluster only on its very first start (docs/meta.md).
    write_config "$dir" "$name" "$( ((first)) && echo true || echo false)"
  done
  for n in meta-1 meta-2 meta-3; do start_one "$dir" "$n"; done
  for n in meta-1 meta-2 meta-3; do wait_ready "$dir" "$n"; done
  touch "$dir/created"
  for i in "${instances[@]}"; do
    read -r name _ _ <<<"$i"
    start_one "$dir" "$name"
  done
  for i in "${instances[@]}"; do
    read -r name _ _ <<<"$i"
    wait_ready "$dir" "$name"
  done
  # Later starts of the voters must not bootstrap again.
  for i in "${instances[@]}"; do
    read -r name _ _ <<<"$i"
    write_config "$dir" "$name" false
  done
  print_instances "$dir"
}

cmd_down() {
  local dir="$1" i name pid
  for i in "${instances[@]}"; do
    read -r name _ _ <<<"$i"
    pid="$(pid_of "$dir" "$name")"
    alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 150); do
    local any=0
    for i in "${instances[@]}"; do
      read -r name _ _ <<<"$i"
      alive "$(pid_of "$dir" "$name")" && any=1
    done
    ((any)) || break
    sleep 0.1
  done
  for i in "${instances[@]}"; do
    read -r name _ _ <<<"$i"
    pid="$(pid_of "$dir" "$name")"
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/$name/pid"
  done
}

cmd_kill() {
  local dir="$1" name="$2" pid
  lookup "$name" >/dev/null || die "unknown instance $name"
  pid="$(pid_of "$dir" "$name")"
  alive "$pid" && kill -KILL "$pid"
  while alive "$pid"; do sleep 0.05; done
  rm -f "$dir/$name/pid"
}

cmd_restart() {
  local dir="$1" name="$2" wipe="${3:-}" comp ip pid old new
  dir="$(cd "$dir" && pwd)"
  ensure_bin "$dir"
  read -r comp ip < <(lookup "$name") || die "unknown instance $name"
  pid="$(pid_of "$dir" "$name")"
  if alive "$pid"; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid"
  fi
  rm -f "$dir/$name/pid"
  if [[ "$wipe" == --wipe ]]; then
    rm -rf "$dir/$name/data"
    if [[ "$comp" == meta ]]; then
      # A voter that lost its disk rejoins under a new id: add it as a learner, then swap it
      # for the old id in the voter set (docs/meta.md "Lost voter disk").
      old="$(meta_id "$dir" "$name")"
      new=$(( $(cat "$dir/next-meta-id" 2>/dev/null || echo 4) ))
      echo $((new + 1)) >"$dir/next-meta-id"
      echo "$new" >"$dir/$name/meta-id"
      for i in "${instances[@]}"; do
        read -r n _ _ <<<"$i"
        write_config "$dir" "$n" false
      done
      start_one "$dir" "$name"
      meta_admin "$dir" /meta/members/add-learner "{\"id\": $new, \"address\": \"$ip:$grpc_port\"}" \
        || die "no meta voter accepted the new learner $new"
      local voters=""
      for n in meta-1 meta-2 meta-3; do voters+="${voters:+, }$(meta_id "$dir" "$n")"; done
      meta_admin "$dir" /meta/members/change-membership "{\"voters\": [$voters]}" \
        || die "no meta voter accepted the membership change"
      wait_ready "$dir" "$name"
      return 0
    fi
  fi
  start_one "$dir" "$name"
  wait_ready "$dir" "$name"
}

[[ $# -ge 2 ]] || { sed -n '2,20p' "$0"; exit 2; }
cmd="$1"; dir="$2"; shift 2
case "$cmd" in
  up) cmd_up "$dir" ;;
  down) cmd_down "$dir" ;;
  kill) [[ $# -ge 1 ]] || die "kill DIR NAME"; cmd_kill "$dir" "$1" ;;
  restart) [[ $# -ge 1 ]] || die "restart DIR NAME [--wipe]"; cmd_restart "$dir" "$@" ;;
  status) print_instances "$dir" ;;
  *) die "unknown command $cmd (up, down, kill, restart, status)" ;;
esac
