#!/usr/bin/env bash
# Instructions per beacon (or per form submission), counted by callgrind in footfall and
# in Redis: a figure that does not move with the machine's load (req/s on a shared machine
# does), for the A/B of two builds of the beacon's or the form's path.
#   bench/instructions.sh [FOOTFALL_BINARY]      (default target/release/footfall)
#   WHAT=form bench/instructions.sh              (forms: a new contact each, JSON, of the
#                                                 known visitors' browsers)
# Knobs: KEEP (a folder for footfall's callgrind file), N (beacons counted, default 2000), VISITORS (known visitors cycled, default 1000;
# more than 4 096 leaves every id out of the worker's memos). The beacons are sent one at
# a time on one keep-alive connection (so no group commit joins them: the count is a
# beacon's own), after one warm-up pass over the visitors; counters are zeroed between.
set -euo pipefail
cd "$(dirname "$0")/.."
FF=${1:-target/release/footfall}
N=${N:-2000}
VISITORS=${VISITORS:-1000}
TOKEN=bench-token-0001
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

WHAT=${WHAT:-beacon}
case "$WHAT" in beacon | form) ;; *) echo "WHAT is beacon or form" >&2; exit 2 ;; esac
[ -x target/debug/bench-prepare ] && [ -x target/debug/bench-form ] ||
  cargo build --quiet -p footfall-bench --bin bench-prepare --bin bench-form
redis_port=$(free_port)
valgrind --tool=callgrind --callgrind-out-file="$work/redis.%p" \
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
redis_pid=$!; pids+=($redis_pid)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.2; done
ff_port=$(free_port)
cat > "$work/footfall.toml" <<TOML
[server]
bind = "127.0.0.1:$ff_port"
public_url = "http://127.0.0.1:$ff_port"
workers = 1
[store]
redis_url = "redis://127.0.0.1:$redis_port"
key_prefix = "ffbench"
response_timeout_ms = 30000
[cookies]
keys = ["$(head -c 32 /dev/urandom | base64)"]
[delivery]
allow_private_targets = true
# No schedule polls during the count (nothing is scheduled).
poll_interval_ms = 600000
[limits]
per_ip_per_second = 0
per_site_per_second = 0
$(cat bench/quotas-never-refusing.toml)
[[accounts]]
account_id = 1
subdomain = "bench"
token = "$TOKEN"
TOML
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/footfall.%p" \
  "$FF" --config "$work/footfall.toml" > "$work/footfall.log" 2>&1 &
ff_pid=$!; pids+=($ff_pid)
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$ff_port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
target/debug/bench-prepare "http://127.0.0.1:$ff_port" "$TOKEN" "$VISITORS" "$work/bodies.txt" >/dev/null
form_id=""
[ "$WHAT" = form ] && form_id=$(target/debug/bench-form "http://127.0.0.1:$ff_port" "$TOKEN")

send() { # count
  python3 - "$ff_port" "$work/bodies.txt" "$1" "$form_id" <<'PY'
import http.client, json, os, sys
port, path, n, form = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
bodies = open(path).read().splitlines()
ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for i in range(n):
    body, target = bodies[i % len(bodies)], "/v1/collect"
    if form:  # the bench's form body (bench-rate's json mode), a new contact each
        vid, k = json.loads(body)["vid"], f"{os.getpid()}.{i}"
        body = json.dumps({"vid": vid, "page": "https://shop.example/contact?utm_source=newsletter",
            "fields": {"name": "Olivia Smith", "email": f"olivia.{k}@example.org",
                "phone": f"+44 20 {i // 10000 % 10000:04} {i % 10000:04}", "company": "Acme Logistics",
                "message": "Hello, we are looking for a quote for 40 units delivered to our Lyon warehouse.",
                "consent": True}})
        target = f"/v1/forms/{form}/submit"
    con.request("POST", target, body=body.encode(),
                headers={"content-type": "text/plain;charset=UTF-8", "user-agent": ua})
    r = con.getresponse(); r.read()
    assert r.status in (200, 201, 204), r.status
PY
}
send "$VISITORS"
commands() { redis-cli -p "$redis_port" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
callgrind_control -z "$ff_pid" >/dev/null 2>&1; callgrind_control -z "$redis_pid" >/dev/null 2>&1
c0=$(commands)
send "$N"
c1=$(commands)
callgrind_control -d "$ff_pid" >/dev/null 2>&1; callgrind_control -d "$redis_pid" >/dev/null 2>&1
redis-cli -p "$redis_port" info commandstats | grep -E '^cmdstat_(rpush|set|evalsha|eval|hmget|get):' | tr '\r' ' ' > "$work/commandstats.txt"
sleep 1
total() { # pid: the instructions of its last dump
  local f; f=$(ls -t "$work"/*."$1"* | head -1)
  awk '/^(summary|totals):/ {print $2}' "$f" | tail -1
}
ff_ir=$(total "$ff_pid"); redis_ir=$(total "$redis_pid")
# KEEP=DIR keeps footfall's counts for callgrind_annotate.
[ -n "${KEEP:-}" ] && cp "$(ls -t "$work"/footfall.* | head -1)" "$KEEP/"
echo "$N ${WHAT}s of $VISITORS known visitors, one at a time: footfall $((ff_ir / N)) instructions per $WHAT, Redis $((redis_ir / N)) (the INFO and counter commands included), $(echo "scale=2; ($c1 - $c0 - 1) / $N" | bc) Redis commands per $WHAT"
echo "Redis commands since the start (warm-up included): $(paste -sd' ' "$work/commandstats.txt")"
