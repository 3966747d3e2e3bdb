#!/usr/bin/env bash
# footfall's benchmarks, run on demand (never part of the test suite). Builds release
# binaries, starts a Redis of its own, and prints in one run, each figure beside its target:
#   beacon    beacon throughput of footfall with 1 000 known visitors against two baselines
#             built in this workspace — (a) a bare actix handler, (b) the same plus one
#             Redis INCR — with p50/p99, errors, CPU time and Redis commands per beacon;
#   distinct  the same with 1 000 000 distinct browsers (ids signed with the config's
#             cookie key, each new to the server's per-worker memos) and 100 000 user
#             agents from a realistic mix;
#   forms     form submissions (JSON and urlencoded, a new contact each) against the
#             one-INCR baseline, then the p99 of each at a fixed 500 forms/s (open loop);
#   latency   visit → webhook latency of an immediate action;
#   memory    Redis memory per linked visitor and per page view;
#   tracker   the tracker's size;
#   lateness  scheduler lateness with 100 000 jobs for one handler (against a bare-timer
#             baseline);
#   blackhole the same jobs spread over 10 handlers, one of which never answers: the other
#             nine's lateness;
#   growth    (opt-in, minutes) beacon throughput and Redis memory per browser with 10 k,
#             100 k and 1 M distinct linked browsers;
#   cluster   (opt-in, or --cluster) beacon throughput of 1 vs 2 footfall instances on a
#             Redis Cluster.
# Knobs (environment): DURATION, CONNECTIONS, ROUNDS, VISITORS, DISTINCT, AGENTS,
# FORM_RATE, FORM_SECONDS, LATENCY_VISITS, LATENCY_RATE, MEMORY_VISITORS, JOBS, JOB_RATE,
# GROWTH (e.g. "10000 100000 1000000"), ONLY (e.g. ONLY=beacon,memory), FOOTFALL
# (another footfall binary to measure, e.g. an older build, against the same baselines),
# and BEFORE (other builds, space-separated, measured beside this one in the beacon part,
# round by round: the A/B of a change in one run; a build that refuses the config's
# [quotas], which it predates, gets the config without it), COMMANDS=1 (after each
# measurement, Redis's busiest commands per request: calls and µs, from its commandstats).
# The drivers talk to footfall through its public HTTP API and config only (but lateness,
# which writes its schedule through this workspace's store code).
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
DISTINCT=${DISTINCT:-1000000}
AGENTS=${AGENTS:-100000}
FORM_RATE=${FORM_RATE:-500}
FORM_SECONDS=${FORM_SECONDS:-10}
GROWTH=${GROWTH:-10000 100000 1000000}
ONLY=${ONLY:-beacon,distinct,forms,latency,memory,tracker,lateness,blackhole}
[ "${1:-}" = "--cluster" ] && ONLY="$ONLY,cluster"
TOKEN=bench-token-0001
COOKIE_KEY=$(head -c 32 /dev/urandom | base64)
COOKIE_NAME=ff_vid
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
footfall_config() { # port store-line [quotas: 1 or 0] [key prefix]
  local quotas=${3:-1} prefix=${4:-ffbench}
  cat <<TOML
[server]
bind = "127.0.0.1:$1"
public_url = "http://127.0.0.1:$1"
[store]
$2
key_prefix = "$prefix"
[cookies]
keys = ["$COOKIE_KEY"]
name = "$COOKIE_NAME"
[delivery]
allow_private_targets = true
[limits]
per_ip_per_second = 0
per_site_per_second = 0
TOML
  [ $quotas = 1 ] && cat bench/quotas-never-refusing.toml
  cat <<TOML
[[accounts]]
account_id = 1
subdomain = "bench"
token = "$TOKEN"
TOML
}
start_footfall() { # port store-line [binary quotas prefix]
  footfall_config "$1" "$2" "${4:-1}" "${5:-ffbench}" > "$work/footfall-$1.toml"
  RUST_LOG=warn "${3:-${FOOTFALL:-$bin/footfall}}" --config "$work/footfall-$1.toml" > "$work/footfall-$1.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$1/healthz"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_commands() { redis-cli -p "$1" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
redis_reads() { awk '/^syscr/ {print $2}' "/proc/$1/io"; }
# Redis's commandstats as "command calls usec" lines (commands run inside scripts
# included: a script call's time holds theirs), into file $2.
redis_cmdstats() { redis-cli -p "$1" info commandstats | tr -d '\r' |
  sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),usec=\([0-9]*\),.*/\1 \2 \3/p' > "$2"; }
# The commands that took Redis most time between two commandstats files, per request.
cmdstats_per_request() { # before after requests
  awk -v n="$3" 'NR == FNR {c[$1] = $2; u[$1] = $3; next}
    {dc = $2 - c[$1]; du = $3 - u[$1]; if (dc > 0) printf "%s %.2f %.2f\n", $1, dc / n, du / n}' "$1" "$2" |
    sort -k3 -gr | head -8 | awk '{printf "%s%s %s calls %s µs", (NR > 1 ? "; " : "  redis per request: "), $1, $2, $3} END {print ""}'
}
# Time the hypervisor ran something else while this machine's CPUs had work (steal, in
# clock ticks summed over the CPUs): a virtual machine's stalls, which no process here
# can shorten, show in every p99 measured meanwhile.
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
field() { awk -v k="$1" '$1 == k {print $2}' "$2"; }

# wrk against one URL; prints "req/s p50 p99 errors" and leaves the full output in
# $work/wrk.txt. The script and its environment come from WRK_SCRIPT and WRK_ENV
# (assignments, space-separated).
run_wrk() { # url duration
  env BODIES="$work/bodies.txt" RUN="$RANDOM$RANDOM" ${WRK_ENV:-} \
    wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency -s "${WRK_SCRIPT:-bench/beacon.lua}" "$1" > "$work/wrk.txt"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5} /Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/wrk.txt" | paste -sd+ | bc)
  echo "$rps $p50 $p99 ${errors:-0}"
}
# wrk's latency ("850.12us", "2.19ms", "1.02s") in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
# The median of the numbers on stdin, with their range.
median() {
  sort -g | awk '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%.3f (rounds %.3f–%.3f)", m, v[1], v[NR]}'
}

# Targets of one comparison, by label: URL, process (for its CPU time), wrk script and
# its environment.
declare -A T_URL T_PID T_LUA T_ENV
hz=$(getconf CLK_TCK)
# Throughput on this machine swings by ±10 % from one run to the next, baseline and
# footfall alike: each round measures the targets back to back (in turned order, so that
# a drift does not favour one), and the ratios are taken per round; their median is the
# figure. `compare "LABELS" "A/B …"` prints each measurement, each round's ratios A/B and
# their medians, and the median of each target's p99; it leaves the medians in RATIO[A/B]
# and P99[label].
declare -A RATIO P99
compare() { # labels ratios
  local labels=$1 pairs=$2 round target order pair
  local -A total rate p99s
  local -a rows=()
  for round in $(seq "$ROUNDS"); do
    order=$labels; [ $((round % 2)) = 0 ] && order=$(tr ' ' '\n' <<< "$labels" | tac | paste -sd' ')
    for target in $order; do
      local url=${T_URL[$target]} pid=${T_PID[$target]}
      WRK_SCRIPT=${T_LUA[$target]} WRK_ENV=${T_ENV[$target]:-} run_wrk "$url" 3 > /dev/null   # warm-up
      local cpu0 rcpu0 cmd0 reads0 steal0 cpu1 rcpu1 cmd1 reads1 steal1 rps p50 p99 errors requests line
      [ -n "${COMMANDS:-}" ] && redis_cmdstats "$redis_port" "$work/cmdstats0"
      cpu0=$(cpu_ticks "$pid"); rcpu0=$(cpu_ticks "$redis_pid"); cmd0=$(redis_commands "$redis_port"); reads0=$(redis_reads "$redis_pid"); steal0=$(steal_ticks)
      read -r rps p50 p99 errors < <(WRK_SCRIPT=${T_LUA[$target]} WRK_ENV=${T_ENV[$target]:-} run_wrk "$url" "$DURATION")
      cpu1=$(cpu_ticks "$pid"); rcpu1=$(cpu_ticks "$redis_pid"); cmd1=$(redis_commands "$redis_port"); reads1=$(redis_reads "$redis_pid"); steal1=$(steal_ticks)
      requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
      per() { echo "scale=1; ($2 - $1) * 1000000 / $hz / $requests" | bc; }
      line=$(printf "round %s %-10s %9.0f req/s  p50 %-8s p99 %-8s errors %s  CPU/request: server %s µs" \
        "$round" "$target" "$rps" "$p50" "$p99" "$errors" "$(per "$cpu0" "$cpu1")")
      if [ "$pid" != "${T_PID[bare]:-none}" ]; then
        line="$line, redis $(per "$rcpu0" "$rcpu1") µs; redis commands/request $(echo "scale=2; ($cmd1 - $cmd0) / $requests" | bc) in $(echo "scale=1; ($cmd1 - $cmd0) / ($reads1 - $reads0 + 1)" | bc) per read"
      fi
      echo "$line; host steal $(awk -v a="$steal0" -v b="$steal1" -v hz="$hz" -v d="$DURATION" 'BEGIN {printf "%.2f", (b - a) / hz / d}') cores"
      if [ -n "${COMMANDS:-}" ] && [ "$pid" != "${T_PID[bare]:-none}" ]; then
        redis_cmdstats "$redis_port" "$work/cmdstats1"
        cmdstats_per_request "$work/cmdstats0" "$work/cmdstats1" "$requests"
      fi
      [ "$errors" = 0 ] || echo "!! $target answered $errors errors in round $round: its figures are not valid"
      total[$target]=$(echo "${total[$target]:-0} + $rps" | bc)
      rate[$target]=$rps
      p99s[$target]="${p99s[$target]:-} $(to_ms "$p99")"
    done
    local row="" shown=""
    for pair in $pairs; do
      local r; r=$(echo "scale=3; ${rate[${pair%/*}]} / ${rate[${pair#*/}]}" | bc)
      row="$row $r"; shown="$shown $pair $r"
    done
    rows+=("$row")
    echo "round $round ratios:$shown"
  done
  echo "median of the rounds' ratios (and the ratio of the totals):"
  local col=0
  for pair in $pairs; do
    col=$((col + 1))
    RATIO[$pair]=$(printf '%s\n' "${rows[@]}" | awk -v c="$col" '{print $c}' | median)
    printf "  %-22s %s; totals %s\n" "$pair" "${RATIO[$pair]}" \
      "$(echo "scale=3; ${total[${pair%/*}]} / ${total[${pair#*/}]}" | bc)"
  done
  for target in $labels; do
    P99[$target]=$(tr ' ' '\n' <<< "${p99s[$target]}" | grep . | median)
    printf "  p99 of %-15s %s ms\n" "$target" "${P99[$target]}"
  done
}
# "met" or "missed": whether the first number (a median, with its range after) is on
# the right side of the target: at_least VALUE TARGET / at_most VALUE TARGET.
at_least() { awk -v v="${1%% *}" -v t="$2" 'BEGIN { print (v + 0 >= t) ? "met" : "MISSED" }'; }
at_most() { awk -v v="${1%% *}" -v t="$2" 'BEGIN { print (v + 0 <= t) ? "met" : "MISSED" }'; }

redis_port=$(free_port)
start_redis "$redis_port"
redis_pid=${pids[-1]}
redis_url="redis://127.0.0.1:$redis_port"

if want beacon || want distinct || want forms || want latency || want lateness || want blackhole; then
  ff_port=$(free_port)
  start_footfall "$ff_port" "redis_url = \"$redis_url\""
  ff_pid=${pids[-1]}
  ff="http://127.0.0.1:$ff_port"
fi
# Each build of BEFORE, by its file name: its port and process.
declare -A B_PORT B_PID
if want beacon; then
  for build in ${BEFORE:-}; do
    name=$(basename "$build"); port=$(free_port)
    footfall_config "$port" "redis_url = \"$redis_url\"" 1 "ff$name" > "$work/check.toml"
    quotas=1; "$build" --config "$work/check.toml" check-config >/dev/null 2>&1 || quotas=0
    start_footfall "$port" "redis_url = \"$redis_url\"" "$build" "$quotas" "ff$name"
    B_PORT[$name]=$port; B_PID[$name]=${pids[-1]}
    echo "before: $build (quotas $([ $quotas = 1 ] && echo on || echo "unknown to it")), measured in the same rounds"
  done
fi

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2); wrk -t1 -c$CONNECTIONS -d${DURATION}s"

if want beacon || want distinct || want forms; then
  bare_port=$(free_port); incr_port=$(free_port)
  $bin/baseline-bare "$bare_port" & pids+=($!); bare_pid=$!
  $bin/baseline-incr "$incr_port" "$redis_url" & pids+=($!); incr_pid=$!
  sleep 0.5
  T_PID=([bare]=$bare_pid [incr]=$incr_pid [footfall]=$ff_pid [json]=$ff_pid [urlencoded]=$ff_pid)
fi
if want distinct || want forms; then
  say "preparing $DISTINCT distinct browsers and $AGENTS user agents"
  $bin/bench-visitors "$ff" "$TOKEN" "$COOKIE_KEY" "$COOKIE_NAME" "$DISTINCT" "$AGENTS" "$work/browsers"
  site_key=$(cat "$work/browsers/site.txt")
fi

if want beacon; then
  say "1. beacon throughput (POST /v1/collect of $VISITORS known visitors)"
  $bin/bench-prepare "$ff" "$TOKEN" "$VISITORS" "$work/bodies.txt"
  T_URL=([bare]="http://127.0.0.1:$bare_port/v1/collect" [incr]="http://127.0.0.1:$incr_port/v1/collect" [footfall]="$ff/v1/collect")
  T_LUA=([bare]=bench/beacon.lua [incr]=bench/beacon.lua [footfall]=bench/beacon.lua)
  T_ENV=()
  labels="bare incr footfall" pairs="footfall/incr footfall/bare incr/bare"
  for name in "${!B_PORT[@]}"; do
    $bin/bench-prepare "http://127.0.0.1:${B_PORT[$name]}" "$TOKEN" "$VISITORS" "$work/bodies-$name.txt"
    T_URL[$name]="http://127.0.0.1:${B_PORT[$name]}/v1/collect"; T_LUA[$name]=bench/beacon.lua
    T_ENV[$name]="BODIES=$work/bodies-$name.txt"; T_PID[$name]=${B_PID[$name]}
    labels="$labels $name" pairs="$pairs $name/incr"
  done
  compare "$labels" "$pairs"
  echo "targets: footfall/incr ≥ 1.0 ($(at_least "${RATIO[footfall/incr]}" 1.0)); footfall p99 ≤ 3 ms ($(at_most "${P99[footfall]}" 3))"
fi

if want distinct; then
  say "1b. beacon throughput with $DISTINCT distinct browsers ($AGENTS user agents)"
  # A browser's first page view starts its visit (several Redis commands more): each
  # browser makes one first, so that every round measures the same thing — ids in a
  # running visit that no worker's memo holds (the memos keep 4 096 entries per thread).
  $bin/bench-rate "$ff/v1/collect" beacon 0 "$DISTINCT" "$work/browsers/vids.txt" "$work/browsers/uas.txt" 0 "$site_key" |
    sed 's/^/first page views (visit starts), 64 in flight: /'
  T_URL=([bare]="http://127.0.0.1:$bare_port/v1/collect" [incr]="http://127.0.0.1:$incr_port/v1/collect" [footfall]="$ff/v1/collect")
  T_LUA=([bare]=bench/stream.lua [incr]=bench/stream.lua [footfall]=bench/stream.lua)
  browsers="MODE=beacon SITE=$site_key VIDS=$work/browsers/vids.txt UAS=$work/browsers/uas.txt"
  T_ENV=([bare]=$browsers [incr]=$browsers [footfall]=$browsers)
  compare "bare incr footfall" "footfall/incr footfall/bare incr/bare"
  echo "targets: footfall/incr ≥ 0.85 ($(at_least "${RATIO[footfall/incr]}" 0.85)); footfall p99 ≤ 3 ms ($(at_most "${P99[footfall]}" 3))"
fi

if want forms; then
  say "1c. form submissions (POST /v1/forms/{id}/submit, a new contact each)"
  form_id=$($bin/bench-form "$ff" "$TOKEN")
  submit="/v1/forms/$form_id/submit"
  T_URL=([incr]="http://127.0.0.1:$incr_port$submit" [json]="$ff$submit" [urlencoded]="$ff$submit")
  T_LUA=([incr]=bench/stream.lua [json]=bench/stream.lua [urlencoded]=bench/stream.lua)
  browsers="VIDS=$work/browsers/vids.txt UAS=$work/browsers/uas.txt"
  T_ENV=([incr]="MODE=json $browsers" [json]="MODE=json $browsers" [urlencoded]="MODE=urlencoded $browsers")
  compare "incr json urlencoded" "json/incr urlencoded/incr"
  echo "targets: forms/incr ≥ 0.5 (json $(at_least "${RATIO[json/incr]}" 0.5), urlencoded $(at_least "${RATIO[urlencoded/incr]}" 0.5))"
  for mode in json urlencoded; do
    # Browsers from anywhere in the file, but not those wrk began with.
    from=$(( (RANDOM * 32768 + RANDOM) % (DISTINCT - FORM_RATE * FORM_SECONDS + 1) ))
    line=$($bin/bench-rate "$ff$submit" "$mode" "$FORM_RATE" "$FORM_SECONDS" "$work/browsers/vids.txt" "$work/browsers/uas.txt" "$from")
    echo "$line"
    p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<< "$line")
    if grep -q "errors 0$" <<< "$line"; then
      echo "target: p99 ≤ 5 ms at $FORM_RATE forms/s ($(at_most "$p99" 5))"
    else
      echo "!! errors: the p99 is not valid (target: p99 ≤ 5 ms at $FORM_RATE forms/s)"
    fi
  done
fi

if want latency; then
  say "2. visit → webhook latency (immediate site-visit action)"
  line=$($bin/bench-latency "$ff" "$TOKEN" "$LATENCY_VISITS" "$LATENCY_RATE")
  echo "$line"
  p99=$(sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p' <<< "$line")
  echo "target: p99 ≤ 5 ms at 1 000 visits/s ($(at_most "$p99" 5))"
fi

if want memory; then
  say "3. Redis memory"
  mem_port=$(free_port)
  start_redis "$mem_port"
  line=$($bin/bench-memory "redis://127.0.0.1:$mem_port" "$MEMORY_VISITORS" 10)
  echo "$line"
  per_pv=$(sed -n 's/.* \([0-9]*\) bytes per page view.*/\1/p' <<< "$line")
  per_browser=$(sed -n 's/.* \([0-9]*\) bytes per linked visitor.*/\1/p' <<< "$line")
  echo "targets: ≤ 90 B per page view ($(at_most "$per_pv" 90)); ≤ 400 B per linked browser ($(at_most "$per_browser" 400))"
fi

if want tracker; then
  say "4. tracker size"
  gz=$(gzip -9c static/t.js | wc -c)
  echo "static/t.js: $(wc -c < static/t.js) bytes, $gz gzipped, $(node -e 'process.stdout.write(String(require("zlib").brotliCompressSync(require("fs").readFileSync("static/t.js")).length))') brotli"
  echo "target: ≤ 1 500 bytes gzipped ($(at_most "$gz" 1500))"
fi

if want lateness; then
  say "5. scheduler lateness ($JOBS jobs at $JOB_RATE/s)"
  $bin/bench-lateness "$ff" "$TOKEN" "$redis_url" ffbench 8 "$JOBS" "$JOB_RATE"
fi

if want blackhole; then
  say "5b. scheduler lateness ($JOBS jobs at $JOB_RATE/s over 10 handlers, one a black hole)"
  # A footfall of its own, so that the black hole's events (retried for hours) stay out
  # of the other parts.
  bh_port=$(free_port)
  bh_redis=$(free_port)
  start_redis "$bh_redis"
  start_footfall "$bh_port" "redis_url = \"redis://127.0.0.1:$bh_redis\""
  $bin/bench-lateness "http://127.0.0.1:$bh_port" "$TOKEN" "redis://127.0.0.1:$bh_redis" ffbench 8 "$JOBS" "$JOB_RATE" 10 1
fi

if want growth; then
  say "7. cost growth: beacon throughput and Redis memory with ${GROWTH// /, } linked browsers"
  # A footfall and a Redis of their own, empty at the start.
  g_redis=$(free_port); start_redis "$g_redis"; g_redis_pid=${pids[-1]}
  g_port=$(free_port); start_footfall "$g_port" "redis_url = \"redis://127.0.0.1:$g_redis\""; g_pid=${pids[-1]}
  g="http://127.0.0.1:$g_port"
  most=$(tr ' ' '\n' <<< "$GROWTH" | sort -n | tail -1)
  $bin/bench-visitors "$g" "$TOKEN" "$COOKIE_KEY" "$COOKIE_NAME" "$most" "$AGENTS" "$work/growth"
  g_site=$(cat "$work/growth/site.txt")
  g_form=$($bin/bench-form "$g" "$TOKEN")
  # The INCR baseline on the same Redis, whose CPU and commands are counted from here on.
  incr_port=$(free_port); $bin/baseline-incr "$incr_port" "redis://127.0.0.1:$g_redis" & pids+=($!); incr_pid=$!
  redis_port=$g_redis; redis_pid=$g_redis_pid
  used() { redis-cli -p "$g_redis" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
  have=0
  for level in $(tr ' ' '\n' <<< "$GROWTH" | sort -n); do
    before=$(used)
    # Each new browser submits a form (a new lead, linked to the browser) and then views
    # a page (its visit starts, its history begins).
    $bin/bench-rate "$g/v1/forms/$g_form/submit" json 0 $((level - have)) "$work/growth/vids.txt" "$work/growth/uas.txt" "$have" | sed 's/^/  linking: /'
    $bin/bench-rate "$g/v1/collect" beacon 0 $((level - have)) "$work/growth/vids.txt" "$work/growth/uas.txt" "$have" "$g_site" | sed 's/^/  first page views: /'
    after=$(used)
    per=$(( (after - before) / (level - have) ))
    first_per=${first_per:-$per}
    echo "$level linked browsers: Redis used_memory $((after / 1000000)) MB; $per bytes per browser added (its lead and contact, the link, one page view); $(echo "scale=2; $per / $first_per" | bc) × the first level's (target: flat, about 1.0, or explained)"
    have=$level
    head -n "$level" "$work/growth/vids.txt" > "$work/growth/vids-$level.txt"
    T_PID=([incr]=$incr_pid [footfall]=$g_pid)
    T_URL=([incr]="http://127.0.0.1:$incr_port/v1/collect" [footfall]="$g/v1/collect")
    T_LUA=([incr]=bench/stream.lua [footfall]=bench/stream.lua)
    browsers="MODE=beacon SITE=$g_site VIDS=$work/growth/vids-$level.txt UAS=$work/growth/uas.txt"
    T_ENV=([incr]=$browsers [footfall]=$browsers)
    pv0=$(used)
    ROUNDS=${GROWTH_ROUNDS:-3} compare "incr footfall" "footfall/incr"
    pv1=$(used)
    first_ratio=${first_ratio:-${RATIO[footfall/incr]%% *}}
    echo "$level browsers: footfall/incr ${RATIO[footfall/incr]}; $(echo "scale=2; ${RATIO[footfall/incr]%% *} / $first_ratio" | bc) × the first level's (target: flat, or explained); Redis used_memory $((pv1 / 1000000)) MB after the page views"
  done
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
