#!/usr/bin/env bash
# Installs what the dashboard's browser test drives Chromium with (playwright-core from npm, which
# brings no browser) into target/browser-test, or $PARLEY_BROWSER_TEST_DIR. The browser is Debian's
# chromium (/usr/bin/chromium), which .ci/run installs when it is missing. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
dir="${PARLEY_BROWSER_TEST_DIR:-$root/target/browser-test}"

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "browser test setup: '$tool' is missing; install Node.js 20 or later (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done
if [ ! -x /usr/bin/chromium ]; then
  echo "browser test setup: /usr/bin/chromium is missing; install it (Debian: apt-get install chromium)" >&2
  exit 1
fi

mkdir -p "$dir"
cp "$here/package.json" "$here/dashboard.mjs" "$dir/"
cd "$dir"
if [ -f node_modules/.parley-installed ] && cmp -s package.json node_modules/.parley-installed; then
  exit 0
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error
cp package.json node_modules/.parley-installed
echo "browser test setup: playwright-core installed in $dir"
