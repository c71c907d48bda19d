#!/usr/bin/env bash
# Installs the peer that the benchmark compares parley with: SAP CAP (@sap/cds 9 on
# @cap-js/sqlite 2, Node 20 or later) from npm into target/bench-peer (or $PARLEY_BENCH_PEER_DIR).
# Idempotent: a second run with the same package.json installs nothing. The benchmark writes the
# CDS model and the records into that directory itself, and runs this script when needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dir="${PARLEY_BENCH_PEER_DIR:-$root/target/bench-peer}"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "peer setup: '$tool' is missing; install Node.js 20 or later (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  echo "peer setup: Node.js $(node --version) is too old; @sap/cds 9 needs 20 or later" >&2
  exit 1
fi

mkdir -p "$dir"
cp "$here/package.json" "$here/preload.js" "$dir/"
cd "$dir"
if [ -f node_modules/.parley-installed ] && cmp -s package.json node_modules/.parley-installed; then
  exit 0
fi
npm install --no-audit --no-fund --loglevel=error
cp package.json node_modules/.parley-installed
echo "peer setup: SAP CAP installed in $dir"
