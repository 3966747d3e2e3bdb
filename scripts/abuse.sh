#!/usr/bin/env bash
# The abuse benchmark (run on demand, never part of the tests): what junk from the open
# internet costs footfall, and what it does to an honest account beside it.
#
# One footfall (release build) on a Redis of its own, two accounts. Account A's site gets
# ABUSE_BEACONS beacons without a visitor id (each with a 2 KB URL, a 2 KB referrer and a
# 300-character title) and ABUSE_FORMS junk form posts, every request from a new client
# address in X-Forwarded-For (footfall trusts the local proxy: server.trusted_proxies),
# while account B runs its normal flow: a lead per browser, accepted, then the browser's
# visit, whose site-visit webhook a local receiver times (rounds of it before and during
# the attack: below). The shipped quotas and limits apply (config.toml's defaults).
#
# Prints: Redis memory (and keys) before, at the peak, at the end of the attack and after
# the junk has expired; how many junk requests were admitted; the cores that footfall,
# Redis, B's driver and the attacker used during the attack, and the whole machine's; the
# hypervisor's steal before and during the attack (a virtual machine's own stalls);
# B's beacon p99 and visit→webhook p99 without and with the attack (target: within 2×).
#
# Junk visitors expire after tracking.anonymous_retention_hours (48 h shipped); the run
# sets ABUSE_RETENTION_HOURS (default 0.02 h = 72 s) so that it ends in minutes; a
# browser's last sighting on a site is kept for the visit gap (30 min shipped), which the
# run sets to ABUSE_VISIT_IDLE_SECONDS (60).
# B's flow runs 2 rounds before the attack (a quiet p99 of 400 samples) and then rounds
# a second apart while the attack lasts; each of its browsers posts B's form, so B's whole
# run must stay under its own site's form quota (5 000 an hour shipped; about 4 800 at
# the defaults, one round short of it: for a longer attack, fewer ABUSE_VISITS).
# Knobs (environment): ABUSE_BEACONS (1000000), ABUSE_FORMS (10000), ABUSE_VISITS (B's
# browsers per round, 200), ABUSE_RATE (B's visits per second, 50), ABUSE_ATTACK_RATE
# (the attack's requests per second, 10000: five times what the site's page-view quota
# admits; 0 sends as fast as ABUSE_CONCURRENCY requests in flight allow, which on a
# two-core machine shared by the attacker, footfall and Redis measures the machine's
# saturation more than footfall), ABUSE_CONCURRENCY (the attack's requests in flight,
# 256), ABUSE_RETENTION_HOURS (0.02), ABUSE_REDIS_ARGS (more arguments for the Redis
# server, e.g. "--lazyfree-lazy-expire yes" or "--slowlog-log-slower-than 1000"),
# ABUSE_REDIS_NICE (the Redis server's niceness, 0: e.g. -10 to stand for a Redis on a
# machine of its own), ABUSE_ATTACKER_NICE (the attacking process's
# niceness, 19: on this one machine the load generator, footfall, Redis and B share two
# cores, and at 19 the scheduler runs the attacker when they are idle, as an attacker's
# own machine would; 0 makes it compete with them as an equal; idle runs it under Linux's
# SCHED_IDLE policy, which any other thread that wakes preempts at once), FOOTFALL
# (another build of footfall to measure, e.g. an older commit's: the same harness, a run
# of its own).
set -euo pipefail
cd "$(dirname "$0")/.."

BEACONS=${ABUSE_BEACONS:-1000000}
FORMS=${ABUSE_FORMS:-10000}
VISITS=${ABUSE_VISITS:-200}
RATE=${ABUSE_RATE:-50}
CONCURRENCY=${ABUSE_CONCURRENCY:-256}
ATTACK_RATE=${ABUSE_ATTACK_RATE:-10000}
RETENTION_HOURS=${ABUSE_RETENTION_HOURS:-0.02}
ATTACKER_NICE=${ABUSE_ATTACKER_NICE:-19}
VISIT_IDLE=${ABUSE_VISIT_IDLE_SECONDS:-60}
TOKEN_A=abuse-account-a-token-0000000000000001
TOKEN_B=abuse-account-b-token-0000000000000002
PREFIX=ffabuse

say() { printf '\n== %s\n' "$*"; }
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

rport=$(free_port)
nice -n "${ABUSE_REDIS_NICE:-0}" redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --maxmemory-policy noeviction ${ABUSE_REDIS_ARGS:-} >/dev/null &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
rcli() { redis-cli -p "$rport" "$@"; }

fport=$(free_port)
cat > "$work/footfall.toml" <<TOML
[server]
bind = "127.0.0.1:$fport"
public_url = "http://127.0.0.1:$fport"
trusted_proxies = ["127.0.0.1"]
[store]
redis_url = "redis://127.0.0.1:$rport"
key_prefix = "$PREFIX"
[cookies]
keys = ["$(head -c 32 /dev/urandom | base64)"]
[tracking]
anonymous_retention_hours = $RETENTION_HOURS
visit_idle_seconds = $VISIT_IDLE
[delivery]
allow_private_targets = true
[demo]
enabled = false
[[accounts]]
account_id = 101
subdomain = "attacked"
token = "$TOKEN_A"
[[accounts]]
account_id = 202
subdomain = "honest"
token = "$TOKEN_B"
TOML
echo "footfall: ${FOOTFALL:-$bin/footfall}"
RUST_LOG=warn "${FOOTFALL:-$bin/footfall}" --config "$work/footfall.toml" >"$work/footfall.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$fport/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# Redis memory and key count once a second: "unix-ms used_memory keys".
sample() { echo "$(date +%s%3N) $(rcli info memory | awk -F: '/^used_memory:/{print $2+0}') $(rcli dbsize)"; }
( while true; do sample; sleep 1; done ) >"$work/memory.txt" &
pids+=($!)
junk_keys() { rcli --scan --pattern "$PREFIX:{*}:p101" | wc -l; }
# CPU once a second, in clock ticks: "unix-ms footfall redis B's-driver machine-busy steal"
# (the attacker reports its own; steal: the time the hypervisor ran something else while
# this machine's CPUs had work, a virtual machine's stalls that show in every p99).
# utime + stime: fields 14 and 15, the 12th and 13th after the name (which may hold spaces).
ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13} END {if (NR == 0) print 0}'; }
( while true; do
    b=$(pgrep -f "bench-abuse http" | head -1 || true)
    echo "$(date +%s%3N) $(ticks "${pids[1]}") $(ticks "${pids[0]}") $([ -n "$b" ] && ticks "$b" || echo 0) $(awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $9}' /proc/stat)"
    sleep 1
  done ) >"$work/cpu.txt" &
pids+=($!)

driver_started=$(date +%s%3N)
say "attack: $BEACONS beacons and $FORMS forms to account A ($([ "$ATTACK_RATE" = 0 ] && echo "closed loop, $CONCURRENCY in flight" || echo "$ATTACK_RATE/s")); account B: $VISITS visits a round at $RATE/s"
before=$(sample)
$bin/bench-abuse "http://127.0.0.1:$fport" "$TOKEN_A" "$TOKEN_B" "$BEACONS" "$FORMS" "$VISITS" "$RATE" "$CONCURRENCY" "$ATTACK_RATE" "$ATTACKER_NICE" | tee "$work/out.txt"
at_end=$(sample)
junk_alive=$(junk_keys)
get() { awk -v k="$1" '$1 == k {print $2}' "$work/out.txt"; }
# The attack's window: from the attacker's start to its own end (B's last round may end
# later).
started=$(get attack_started_ms); ended=$(get attacker_ended_ms)
quiet_mem=$(awk -v t="$started" '$1 <= t {m=$2; k=$3} END {print m, k}' "$work/memory.txt")
peak=$(awk -v a="$started" -v b="$ended" '$1 >= a && $1 <= b && $2 > m {m=$2; k=$3} END {print m, k}' "$work/memory.txt")

wait_s=$(python3 -c "print(max(int($RETENTION_HOURS * 3600), $VISIT_IDLE + 1) + 30)")
say "waiting ${wait_s} s for the junk to expire (anonymous retention ${RETENTION_HOURS} h, visit gap ${VISIT_IDLE} s)"
sleep "$wait_s"
# Let Redis's active expiry finish: until no junk history is left (or a minute more).
for _ in $(seq 60); do [ "$(junk_keys)" -eq 0 ] && break; sleep 1; done
after=$(sample)
junk_left=$(junk_keys)
unsorted_a=$(rcli hlen "$PREFIX:{a101}:unsorted")

mb() { awk -v b="$1" 'BEGIN {printf "%.1f MB", b / 1048576}'; }
say "results"
echo "Redis memory before the attack:   $(mb "$(echo "$quiet_mem" | cut -d' ' -f1)") ($(echo "$quiet_mem" | cut -d' ' -f2) keys)"
echo "Redis memory at the attack's peak: $(mb "$(echo "$peak" | cut -d' ' -f1)") ($(echo "$peak" | cut -d' ' -f2) keys)"
echo "Redis memory at the attack's end: $(mb "$(echo "$at_end" | cut -d' ' -f2)") ($(echo "$at_end" | cut -d' ' -f3) keys; junk browsers alive: $junk_alive)"
echo "Redis memory after expiry:        $(mb "$(echo "$after" | cut -d' ' -f2)") ($(echo "$after" | cut -d' ' -f3) keys; junk browsers left: $junk_left)"
echo "  (before the run, empty: $(mb "$(echo "$before" | cut -d' ' -f2)"); B's leads of every round stay, as A's admitted junk forms: $unsorted_a in A's Unsorted)"
echo "junk beacons admitted: $(get junk_beacons_admitted) of $BEACONS (refused: $(get junk_beacons_refused); $(grep junk_beacon_statuses "$work/out.txt" | cut -d' ' -f2-))"
echo "junk forms admitted:   $(get junk_forms_admitted) of $FORMS (refused: $(get junk_forms_refused))"
echo "attack lasted $(awk -v a="$started" -v b="$ended" 'BEGIN {printf "%.1f", (b - a) / 1000}') s"
# Cores used during the attack, from the CPU samples nearest its start and end.
cores() {
  awk -v a="$started" -v b="$ended" -v hz="$(getconf CLK_TCK)" -v cores="$(nproc)" \
      -v attacker="$(get attacker_cpu_ticks)" '
    $1 >= a && !s {s = 1; t0 = $1; f0 = $2; r0 = $3; x0 = $4; m0 = $5}
    $1 <= b {t1 = $1; f1 = $2; r1 = $3; x1 = $4; m1 = $5}
    END {
      d = (t1 - t0) / 1000 * hz
      if (d > 0) printf "footfall %.2f, Redis %.2f, B'"'"'s driver %.2f, the attacker %.2f, the whole machine %.2f of %d", (f1 - f0) / d, (r1 - r0) / d, (x1 - x0) / d, attacker / ((b - a) / 1000 * hz), (m1 - m0) / d, cores
    }' "$work/cpu.txt"
}
echo "cores busy during the attack: $(cores)"
# The hypervisor's steal over a window, in cores.
steal() {
  awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" '
    $1 >= a && !s {s = 1; t0 = $1; s0 = $6}
    $1 <= b {t1 = $1; s1 = $6}
    END {d = (t1 - t0) / 1000 * hz; if (d > 0) printf "%.2f", (s1 - s0) / d; else printf "n/a"}' "$work/cpu.txt"
}
echo "cores taken by the hypervisor (steal): $(steal "$driver_started" "$started") before the attack, $(steal "$started" "$ended") during it"
q99=$(get quiet_beacon_p99_ms); a99=$(get attack_beacon_p99_ms)
qw=$(get quiet_webhook_p99_ms); aw=$(get attack_webhook_p99_ms)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", (b > 0 ? a / b : 0)}'; }
echo "account B, beacon p99:          ${q99} ms quiet, ${a99} ms under attack ($(ratio "$a99" "$q99"); target ≤ 2×)"
echo "account B, visit→webhook p99:   ${qw} ms quiet, ${aw} ms under attack ($(ratio "$aw" "$qw"); target ≤ 2×)"
echo "account B: $(get quiet_visits) + $(get attack_visits) visits, webhooks missing: $(get quiet_webhooks_missing) + $(get attack_webhooks_missing)"
