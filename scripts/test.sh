#!/usr/bin/env bash
# Runs every test of footfall: formatting and lints, unit tests, the store conformance
# suite and the black-box tests (real Redis, real webhook receivers, real processes), the
# tracker's size check, the example receivers, the container environment, and the browser
# test in Chromium, Firefox and WebKit side by side. Installs what it needs when missing:
# redis-server, chromium, firefox-esr, webkit2gtk-driver and xvfb from Debian's packages,
# geckodriver from crates.io (built once, kept in ~/.cargo/bin), playwright-core, terser
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
fi
echo "redis: $(redis-server --version | cut -d' ' -f3)"

say "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings

say "unit, conformance and black-box tests"
cargo build --quiet --bins
# The client libraries the tests drive footfall with, pinned: aioamocrm, and the account
# webhooks' subscriber (querystring-parser, standardwebhooks; tests/integration/account_webhooks.rs).
{ python3 -m pip show aioamocrm 2>/dev/null | grep -q '^Version: 0.1.1$' \
    && python3 -c "import querystring_parser, standardwebhooks" 2>/dev/null; } \
  || python3 -m pip install --quiet --disable-pip-version-check -r tests/client/requirements.txt
# A failing test's message, not a backtrace, at the end of its output (CI shows the ends).
# Four tests at once on two cores: most of a black-box test's time is spent waiting (for a
# delay, a lease, a process), and the tests that load the machine hold `common::HEAVY`, one
# at a time (measured: 196 s instead of 256 s, both cores 25 % busy with two at once).
RUST_BACKTRACE=0 cargo test --quiet --all-targets -- --test-threads 4

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

say "browser test: the five steps in Chromium, Firefox and WebKit, side by side"
if [ -n "$gecko_build" ]; then
  wait "$gecko_build" || { cat /tmp/footfall-geckodriver-build.log; echo "geckodriver did not build"; exit 1; }
fi
logs=$(mktemp -d)
started=$(date +%s)
node tests/browser/console.mjs >"$logs/chromium.log" 2>&1 &
chromium=$!
node tests/browser/engines.mjs firefox >"$logs/firefox.log" 2>&1 &
firefox=$!
# MiniBrowser has no headless mode: a virtual display.
xvfb-run -a node tests/browser/engines.mjs webkit >"$logs/webkit.log" 2>&1 &
webkit=$!
failed=()
wait "$chromium" || failed+=(Chromium)
wait "$firefox" || failed+=(Firefox)
wait "$webkit" || failed+=(WebKit)
for engine in chromium firefox webkit; do
  echo "-- $engine"
  grep -v '^{"timestamp"' "$logs/$engine.log" || true
done
echo "three engines in $(( $(date +%s) - started )) s (side by side); screenshots in tests/artifacts/"
rm -rf "$logs"
[ ${#failed[@]} -eq 0 ] || { echo "browser test failed in: ${failed[*]}"; exit 1; }

# One Chromium test script: its output without footfall's own log lines, and its verdict.
chromium_test() {
  local title=$1 script=$2 log ok=0
  say "browser test: $title (Chromium)"
  log=$(mktemp)
  node "tests/browser/$script" >"$log" 2>&1 || ok=$?
  grep -v '^{"timestamp"' "$log" || true
  rm -f "$log"
  [ "$ok" -eq 0 ] || { echo "the browser test $script failed"; exit 1; }
}
chromium_test "a lead by API with the visitor's uid from t.js" visitor_uid.mjs
chromium_test "the console's Webhooks tab, a subscriber and a replay" webhooks.mjs
chromium_test "consent and Global Privacy Control in t.js" consent.mjs
chromium_test "export, erasure and the Privacy view in the console" privacy_console.mjs

say "browser test: campaign source, a page condition and Insights (Chromium)"
mk_log=$(mktemp)
mk_ok=0
node tests/browser/marketing.mjs >"$mk_log" 2>&1 || mk_ok=$?
grep -v '^{"timestamp"' "$mk_log" || true
rm -f "$mk_log"
[ "$mk_ok" -eq 0 ] || { echo "the marketing browser test failed"; exit 1; }

say "browser test: the console's Quotas tab (Chromium)"
quotas_log=$(mktemp)
quotas_ok=0
node tests/browser/quotas.mjs >"$quotas_log" 2>&1 || quotas_ok=$?
grep -v '^{"timestamp"' "$quotas_log" || true
rm -f "$quotas_log"
[ "$quotas_ok" -eq 0 ] || { echo "the quotas browser test failed"; exit 1; }

say "all tests passed"
