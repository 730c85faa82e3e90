#!/usr/bin/env bash
# Install the browser-side libraries of `cuepoint serve` from their npm packages (pinned in
# web/package-lock.json) and put hls.js where the server reads it:
#   $CUEPOINT_WEB_VENDOR, else $XDG_CACHE_HOME/cuepoint/web, else ~/.cache/cuepoint/web
# (`cuepoint serve --web-vendor DIR` reads another place). Also installs playwright-core for
# the browser test (tests/browser/). Needs node and npm.
set -euo pipefail
WEB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$WEB"
npm ci --no-audit --no-fund --loglevel=error
VENDOR=${CUEPOINT_WEB_VENDOR:-${XDG_CACHE_HOME:-$HOME/.cache}/cuepoint/web}
mkdir -p "$VENDOR"
cp node_modules/hls.js/dist/hls.min.js "$VENDOR/hls.min.js"
echo "hls.js $(node -p 'require("hls.js/package.json").version') -> $VENDOR/hls.min.js"
