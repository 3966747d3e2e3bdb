#!/usr/bin/env bash
# footfall's benchmarks, run on demand (never part of the test suite). Builds release
# binaries, starts a Redis of its own, and prints in one run:
#   1. beacon throughput of footfall against two baselines built in this workspace —
#      (a) a bare actix handler, (b) the same plus one Redis INCR — with p50/p99, errors,
#      footfall's CPU time and Redis commands per beacon;
#   2. visit → webhook latency of an immediate action;
#   3. Redis memory per linked visitor and per page view;
#   4. the tracker's size;
#   5. scheduler lateness with 100 000 scheduled jobs (against a bare-timer baseline);
#   6. with --cluster: beacon throughput of 1 vs 2 footfall instances on a Redis Cluster.
# Knobs (environment): DURATION, CONNECTIONS, ROUNDS, VISITORS, LATENCY_VISITS,
# LATENCY_RATE, MEMORY_VISITORS, JOBS, JOB_RATE, ONLY (e.g. ONLY=beacon,memory), and
# FOOTFALL (another footfall binary to measure, e.g. an older build, against the same
# baselines).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-5}
VISITORS=${VISITORS:-1000}
LATENCY_VISITS=${LATENCY_VISITS:-10000}
LATENCY_RATE=${LATENCY_RATE:-1000}
MEMORY_VISITORS=${MEMORY_VISITORS:-100000}
JOBS=${JOBS:-100000}
JOB_RATE=${JOB_RATE:-2000}
ONLY=${ONLY:-beacon,latency,memory,tracker,lateness}
[ "${1:-}" = "--cluster" ] && ONLY="$ONLY,cluster"
TOKEN=bench-token-0001
want() { [[ ",$ONLY," == *",$1,"* ]]; }
say() { printf '\n== %s\n' "$*"; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
say "building release binaries"
cargo build --release --quiet -p footfall -p footfall-bench
bin=target/release

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# A cluster node's bus listens 10 000 above its port: both must be free and below 65 536.
free_cluster_port() {
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    if port < 55000:
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", port + 10000)); print(port); break
        except OSError:
            pass
'
}
wait_http() { for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return; sleep 0.1; done; echo "no answer from $1"; exit 1; }
start_redis() { # port [extra args]
  local port=$1; shift
  mkdir -p "$work/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/redis-$port" "$@" >/dev/null &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
footfall_config() { # port store-line
  cat <<TOML
[server]
bind = "127.0.0.1:$1"
public_url = "http://127.0.0.1:$1"
[store]
$2
key_prefix = "ffbench"
[cookies]
keys = ["$(head -c 32 /dev/urandom | base64)"]
[delivery]
allow_private_targets = true
[limits]
per_ip_per_second = 0
per_site_per_second = 0
[[accounts]]
account_id = 1
subdomain = "bench"
token = "$TOKEN"
TOML
}
start_footfall() { # port store-line
  footfall_config "$1" "$2" > "$work/footfall-$1.toml"
  RUST_LOG=warn "${FOOTFALL:-$bin/footfall}" --config "$work/footfall-$1.toml" > "$work/footfall-$1.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$1/healthz"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_commands() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
redis_reads() { awk '/^syscr/ {print $2}' "/proc/$1/io"; }
field() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# wrk against one URL; prints "req/s p50 p99 errors" and leaves the full output in $work/wrk.txt
run_wrk() { # url duration
  BODIES=$work/bodies.txt wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency -s bench/beacon.lua "$1" > "$work/wrk.txt"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5} /Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk.txt" | paste -sd+ | bc)
  echo "$rps $p50 $p99 ${errors:-0}"
}

redis_port=$(free_port)
start_redis "$redis_port"
redis_pid=${pids[-1]}
redis_url="redis://127.0.0.1:$redis_port"

if want beacon || want latency || want lateness; then
  ff_port=$(free_port)
  start_footfall "$ff_port" "redis_url = \"$redis_url\""
  ff_pid=${pids[-1]}
  ff="http://127.0.0.1:$ff_port"
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2); wrk -t1 -c$CONNECTIONS -d${DURATION}s"

if want beacon; then
  say "1. beacon throughput (POST /v1/collect of known visitors)"
  bare_port=$(free_port); incr_port=$(free_port)
  $bin/baseline-bare "$bare_port" & pids+=($!); bare_pid=$!
  $bin/baseline-incr "$incr_port" "$redis_url" & pids+=($!); incr_pid=$!
  sleep 0.5
  $bin/bench-prepare "$ff" "$TOKEN" "$VISITORS" "$work/bodies.txt"
  hz=$(getconf CLK_TCK)
  # Throughput on this machine swings by ±10 % from one run to the next, baseline and
  # footfall alike: each round measures the three back to back (in turned order, so that a
  # drift does not favour one), and the ratios are taken per round; their median is the
  # figure.
  declare -A total rate
  ratios=()
  for round in $(seq "$ROUNDS"); do
    order="bare incr footfall"; [ $((round % 2)) = 0 ] && order="footfall incr bare"
    for target in $order; do
      case $target in
        bare) url="http://127.0.0.1:$bare_port/v1/collect"; pid=$bare_pid ;;
        incr) url="http://127.0.0.1:$incr_port/v1/collect"; pid=$incr_pid ;;
        footfall) url="$ff/v1/collect"; pid=$ff_pid ;;
      esac
      run_wrk "$url" 3 > /dev/null   # warm-up
      cpu0=$(cpu_ticks "$pid"); rcpu0=$(cpu_ticks "$redis_pid"); cmd0=$(redis_commands "$redis_port"); reads0=$(redis_reads "$redis_pid")
      read -r rps p50 p99 errors < <(run_wrk "$url" "$DURATION")
      cpu1=$(cpu_ticks "$pid"); rcpu1=$(cpu_ticks "$redis_pid"); cmd1=$(redis_commands "$redis_port"); reads1=$(redis_reads "$redis_pid")
      requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
      per() { echo "scale=1; ($2 - $1) * 1000000 / $hz / $requests" | bc; }
      line=$(printf "round %s %-9s %9.0f req/s  p50 %-8s p99 %-8s errors %s  CPU/beacon: server %s µs" \
        "$round" "$target" "$rps" "$p50" "$p99" "$errors" "$(per "$cpu0" "$cpu1")")
      if [ "$target" != bare ]; then
        line="$line, redis $(per "$rcpu0" "$rcpu1") µs; redis commands/beacon $(echo "scale=2; ($cmd1 - $cmd0) / $requests" | bc) in $(echo "scale=1; ($cmd1 - $cmd0) / ($reads1 - $reads0)" | bc) per read"
      fi
      echo "$line"
      total[$target]=$(echo "${total[$target]:-0} + $rps" | bc)
      rate[$target]=$rps
    done
    ratio() { echo "scale=3; ${rate[$1]} / ${rate[$2]}" | bc; }
    ratios+=("$(ratio footfall incr) $(ratio footfall bare) $(ratio incr bare)")
    echo "round $round ratios: footfall/INCR ${ratios[-1]%% *}"
  done
  median() { # column
    printf '%s\n' "${ratios[@]}" | awk -v c="$1" '{print $c}' | sort -n |
      awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "%.3f (rounds %.3f–%.3f)", m, v[1], v[NR]}'
  }
  echo "median of the rounds' ratios, and the ratio of the totals:"
  echo "footfall / (a) bare:        $(median 2); totals $(echo "scale=3; ${total[footfall]} / ${total[bare]}" | bc)"
  echo "footfall / (b) one INCR:    $(median 1); totals $(echo "scale=3; ${total[footfall]} / ${total[incr]}" | bc)"
  echo "(b) one INCR / (a) bare:    $(median 3); totals $(echo "scale=3; ${total[incr]} / ${total[bare]}" | bc)"
fi

if want latency; then
  say "2. visit → webhook latency (immediate site-visit action)"
  $bin/bench-latency "$ff" "$TOKEN" "$LATENCY_VISITS" "$LATENCY_RATE"
fi

if want memory; then
  say "3. Redis memory"
  mem_port=$(free_port)
  start_redis "$mem_port"
  $bin/bench-memory "redis://127.0.0.1:$mem_port" "$MEMORY_VISITORS" 10
fi

if want tracker; then
  say "4. tracker size"
  echo "static/t.js: $(wc -c < static/t.js) bytes, $(gzip -9c static/t.js | wc -c) gzipped, $(node -e 'process.stdout.write(String(require("zlib").brotliCompressSync(require("fs").readFileSync("static/t.js")).length))') brotli"
fi

if want lateness; then
  say "5. scheduler lateness ($JOBS jobs at $JOB_RATE/s)"
  $bin/bench-lateness "$ff" "$TOKEN" "$redis_url" ffbench 8 "$JOBS" "$JOB_RATE"
fi

if want cluster; then
  say "6. Redis Cluster: beacon throughput with 1 and 2 footfall instances"
  ports=(); urls=()
  for _ in 1 2 3; do
    p=$(free_cluster_port); ports+=("$p"); urls+=("\"redis://127.0.0.1:$p\"")
    start_redis "$p" --cluster-enabled yes --cluster-config-file nodes.conf
  done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 0 --cluster-yes >/dev/null
  until redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
  store="redis_cluster_urls = [$(IFS=,; echo "${urls[*]}")]"
  a_port=$(free_port); b_port=$(free_port)
  start_footfall "$a_port" "$store"
  start_footfall "$b_port" "$store"
  $bin/bench-prepare "http://127.0.0.1:$a_port" "$TOKEN" "$VISITORS" "$work/bodies.txt"
  read -r one p50 p99 errors < <(run_wrk "http://127.0.0.1:$a_port/v1/collect" "$DURATION")
  echo "1 instance:  $one req/s  p50 $p50  p99 $p99  errors $errors"
  half=$((CONNECTIONS / 2))
  BODIES=$work/bodies.txt wrk -t1 -c"$half" -d"$DURATION"s -s bench/beacon.lua "http://127.0.0.1:$a_port/v1/collect" > "$work/a.txt" &
  wrk_a=$!
  BODIES=$work/bodies.txt wrk -t1 -c"$half" -d"$DURATION"s -s bench/beacon.lua "http://127.0.0.1:$b_port/v1/collect" > "$work/b.txt"
  wait "$wrk_a"
  two=$(awk '/^Requests\/sec/ {s += $2} END {print s}' "$work/a.txt" "$work/b.txt")
  echo "2 instances: $two req/s (two wrk processes, $half connections each)"
  echo "On 2 cores the load generator, both instances and three Redis nodes share the CPU: this shows correctness under load more than speed-up."
fi
