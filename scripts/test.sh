#!/usr/bin/env bash
# Runs every test of footfall: formatting and lints, unit tests, the store conformance
# suite and the black-box tests (real Redis, real webhook receivers, real processes), the
# tracker's size check, the example receivers, the container environment, and the browser
# tests in Chromium, Firefox and WebKit side by side. Installs what it needs when missing:
# redis-server, openssl, chromium, firefox-esr, webkit2gtk-driver and xvfb from Debian's
# packages, geckodriver from crates.io (built once, kept in ~/.cargo/bin), playwright-core, terser
# and RapiDoc from npm, standardwebhooks from PyPI and npm, the amoCRM client library
# aioamocrm and the bracket parser querystring-parser from PyPI (pinned in
# tests/client/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

suite_started=$(date +%s)
# A section's title, and the seconds since the suite started.
say() { printf '\n== %s (at %d s)\n' "$*" $(( $(date +%s) - suite_started )); }
have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

say "prerequisites"
have redis-server || apt_install redis-server
# Certificates for the HTTPS handlers of tests/integration/tls.rs.
have openssl || apt_install openssl
# The browsers: Debian's packages, no browser download.
MINIBROWSER=/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
{ [ -x /usr/bin/WebKitWebDriver ] && [ -x "$MINIBROWSER" ]; } || missing+=(webkit2gtk-driver)
{ have xvfb-run && have xauth; } || missing+=(xvfb xauth)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
# geckodriver from its crate (about 3 minutes on 2 cores): built once, in the background
# while the Rust tests run, and kept in ~/.cargo/bin for the next runs.
GECKODRIVER=${GECKODRIVER:-}
for g in tools/cargo/bin/geckodriver "$HOME/.cargo/bin/geckodriver" "$(command -v geckodriver || true)"; do
  [ -z "$GECKODRIVER" ] && [ -n "$g" ] && [ -x "$g" ] && GECKODRIVER=$g
done
gecko_build=""
if [ -z "$GECKODRIVER" ]; then
  echo "geckodriver: building it (cargo install geckodriver --locked) in the background"
  nice cargo install geckodriver --locked --quiet >/tmp/footfall-geckodriver-build.log 2>&1 &
  gecko_build=$!
  GECKODRIVER="$HOME/.cargo/bin/geckodriver"
fi
export GECKODRIVER
# The tests use the Redis on 127.0.0.1:6379 (or FOOTFALL_TEST_REDIS_URL); start one if
# none answers. Tests that need a Redis of their own start it on a free port.
if [ -z "${FOOTFALL_TEST_REDIS_URL:-}" ] && ! redis-cli -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --logfile /tmp/footfall-test-redis.log
  for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p 6379 ping >/dev/null 2>&1 || {
    echo "redis-server on 127.0.0.1:6379 did not answer within 5 s; the end of its log (/tmp/footfall-test-redis.log):"
    tail -n 20 /tmp/footfall-test-redis.log 2>/dev/null || true
    exit 1
  }
fi
echo "redis: $(redis-server --version | cut -d' ' -f3)"

say "format and lints (clippy beside the tests, at the lowest priority)"
cargo fmt --all -- --check
# The whole workspace: the benchmarks' drivers and baselines (bench/) too. Clippy's check
# build shares nothing with the test build, and the black-box tests mostly wait (their
# critical path is the HEAVY tests, one at a time): so clippy runs in a target folder of
# its own under nice 19, in the cores' idle time, and is waited for after the tests
# (measured on a cold clone: 125 s of clippy before the tests, out of 630 s in all).
CARGO_TARGET_DIR=target/clippy nice -n 19 cargo clippy --workspace --all-targets --quiet -- -D warnings \
  >/tmp/footfall-clippy.log 2>&1 &
clippy=$!
# A run that fails before the tests end leaves no clippy behind.
trap 'kill "$clippy" 2>/dev/null || true' EXIT

say "unit, conformance and black-box tests"
# The client libraries the tests drive footfall with, pinned: aioamocrm, and the account
# webhooks' subscriber (querystring-parser, standardwebhooks; tests/integration/account_webhooks.rs).
{ python3 -m pip show aioamocrm 2>/dev/null | grep -q '^Version: 0.1.1$' \
    && python3 -c "import querystring_parser, standardwebhooks" 2>/dev/null; } \
  || python3 -m pip install --quiet --disable-pip-version-check -r tests/client/requirements.txt
# A failing test's message, not a backtrace, at the end of its output (CI shows the ends).
# Four tests at once on two cores: most of a black-box test's time is spent waiting (for a
# delay, a lease, a process), and the tests that load the machine hold `common::HEAVY`, one
# at a time (measured: 196 s instead of 256 s, both cores 25 % busy with two at once).
# `cargo test` builds target/debug/footfall too, which the later sections run: a `cargo
# build` first would compile the crate once more, with its dependencies' features as they
# are without the dev-dependencies (measured: 50 s of a cold build).
RUST_BACKTRACE=0 cargo test --quiet --all-targets -- --test-threads 4
wait "$clippy" || { cat /tmp/footfall-clippy.log; echo "clippy found problems"; exit 1; }
echo "clippy: no warnings"

say "OpenAPI document: made from the routes, valid OpenAPI"
python3 -c "import openapi_spec_validator" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator
target/debug/footfall openapi > /tmp/footfall-openapi.json
python3 -m openapi_spec_validator /tmp/footfall-openapi.json

say "tracker: committed build matches the source, size"
scripts/build-tracker.sh /tmp/footfall-t.js >/dev/null
cmp -s /tmp/footfall-t.js static/t.js || { echo "static/t.js is stale: run scripts/build-tracker.sh"; exit 1; }
gz=$(gzip -9c static/t.js | wc -c)
echo "t.js: $(wc -c < static/t.js) bytes, $gz gzipped"
[ "$gz" -le 1500 ] || { echo "t.js is over 1 500 bytes gzipped"; exit 1; }

say "API reference: the committed viewer is RapiDoc's from npm"
[ -d tools/node_modules/rapidoc ] || (cd tools && npm ci --no-audit --no-fund --loglevel=error)
cmp -s tools/node_modules/rapidoc/dist/rapidoc-min.js static/api-docs/rapidoc-min.js \
  || { echo "static/api-docs/rapidoc-min.js differs from tools/node_modules/rapidoc: copy it again"; exit 1; }

say "example receivers: a real webhook verified, a tampered one refused (Python, Node)"
python3 -c "import standardwebhooks" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check -r examples/receivers/python/requirements.txt
[ -d examples/receivers/node/node_modules ] || (cd examples/receivers/node && npm ci --no-audit --no-fund --loglevel=error)
node tests/deploy/receivers.mjs

say "amoCRM client library: aioamocrm (pinned) against a live footfall"
python3 tests/client/amocrm_client.py target/debug/footfall

say "containers: compose.yaml's environment on the binary, with Redis"
python3 -c "import yaml" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml
python3 tests/deploy/compose_env.py target/debug/footfall

say "browser tests: the five steps in Chromium, Firefox and WebKit, and the console's views in Chromium, five at a time"
if [ -n "$gecko_build" ]; then
  wait "$gecko_build" || { cat /tmp/footfall-geckodriver-build.log; echo "geckodriver did not build"; exit 1; }
fi
# Each test is a browser and a footfall of its own, and most of a test is waiting for a
# page: BROWSER_JOBS (five) run at once on two cores (measured: 37 s for the nine, before the tenth, against 69 s for the
# engines side by side and the rest one by one). Each one's output, without footfall's own
# log lines, is printed when all have ended, then the names of those that failed.
BROWSER_TESTS=(
  "five steps, Chromium|node tests/browser/console.mjs"
  "five steps, Firefox|node tests/browser/engines.mjs firefox"
  # MiniBrowser has no headless mode: a virtual display.
  "five steps, WebKit|xvfb-run -a node tests/browser/engines.mjs webkit"
  "a lead by API with the visitor's uid from t.js|node tests/browser/visitor_uid.mjs"
  "the console's Webhooks tab, a subscriber and a replay|node tests/browser/webhooks.mjs"
  "consent and Global Privacy Control in t.js|node tests/browser/consent.mjs"
  "t.js on hard pages: SPA routes while minting, bfcache, stopped and fallback forms|node tests/browser/tracker.mjs"
  "export, erasure and the Privacy view in the console|node tests/browser/privacy_console.mjs"
  "campaign source, a page condition and Insights|node tests/browser/marketing.mjs"
  "the console's Quotas tab|node tests/browser/quotas.mjs"
)
BROWSER_JOBS=5
logs=$(mktemp -d)
started=$(date +%s)
declare -A test_of=()
failed=()
# Waits for one test to end, and notes it if it failed.
reap() {
  local pid status=0
  wait -n -p pid || status=$?
  # 127: no test left to wait for, though some were not seen to end.
  [ -n "${pid:-}" ] || { echo "lost track of a browser test (wait: $status)"; exit 1; }
  [ "$status" -eq 0 ] || failed+=("${test_of[$pid]}")
  unset "test_of[$pid]"
}
for i in "${!BROWSER_TESTS[@]}"; do
  while [ ${#test_of[@]} -ge "$BROWSER_JOBS" ]; do reap; done
  # In a subshell of its own, which exits normally even when the test dies of a signal
  # (bash forgets a job killed by a signal, and `wait -n` would never see it).
  { bash -c "${BROWSER_TESTS[$i]#*|}" >"$logs/$i.log" 2>&1; } &
  test_of[$!]=${BROWSER_TESTS[$i]%%|*}
done
while [ ${#test_of[@]} -gt 0 ]; do reap; done
for i in "${!BROWSER_TESTS[@]}"; do
  echo "-- ${BROWSER_TESTS[$i]%%|*}"
  grep -v '^{"timestamp"' "$logs/$i.log" || true
done
echo "${#BROWSER_TESTS[@]} browser tests in $(( $(date +%s) - started )) s; screenshots in tests/artifacts/"
rm -rf "$logs"
[ ${#failed[@]} -eq 0 ] || { printf 'browser test failed: %s\n' "${failed[@]}"; exit 1; }

say "all tests passed"
