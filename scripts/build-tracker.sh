#!/usr/bin/env bash
# Builds static/t.js (what sites load) from static/src/t.js (what people read) with terser.
# The output is committed, so running footfall never needs Node; the test suite checks that
# the committed file is the build of the source and stays under 1 500 bytes gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x tools/node_modules/.bin/terser ] || (cd tools && npm ci --no-audit --no-fund --silent)
out=${1:-static/t.js}
tools/node_modules/.bin/terser static/src/t.js --compress passes=2 --mangle --comments '/^!/' -o "$out"
echo "$out: $(wc -c < "$out") bytes, $(gzip -9c "$out" | wc -c) gzipped"
