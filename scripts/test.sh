#!/usr/bin/env bash
# Runs every test of footfall: formatting and lints, unit tests, the store conformance
# suite and the black-box tests (real Redis, real webhook receivers, real processes), the
# tracker's size check, and the browser test. Installs what it needs when missing:
# redis-server and chromium from Debian's packages, playwright-core and terser from npm.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

say "prerequisites"
have redis-server || apt_install redis-server
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
cargo test --quiet --all-targets

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

say "browser test: the console in headless Chromium, the demo site on another site"
# Debian's Chromium (no browser download) driven by playwright-core from tools/.
[ -x /usr/bin/chromium ] || apt_install chromium
[ -d tools/node_modules ] || (cd tools && npm ci --no-audit --no-fund --loglevel=error)
node tests/browser/console.mjs

say "all tests passed"
