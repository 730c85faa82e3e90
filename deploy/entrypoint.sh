#!/bin/sh
# Entry point of the cuepoint images: the first argument (or CUEPOINT_WORKER) picks what runs.
#
#   ingest | media | analysis | results | scoring | packaging   one worker (cuepoint-<name>)
#   sweep                                           `cuepoint sweep` (re-drive stuck assets)
#   cuepoint ARGS... | cli ARGS...                  the operator CLI, e.g. `cli dlq list`
#
# The chosen program replaces this shell (exec), so it is the container's main process and
# receives SIGTERM directly: workers stop receiving, drain, then exit.
set -eu

BIN_DIR=${CUEPOINT_BIN_DIR:-/usr/local/bin}

usage() {
    cat >&2 <<'EOF'
usage: <image> WORKER [ARGS...]
  WORKER: ingest | media | analysis | results | scoring | packaging | sweep | cli (operator CLI)
  or set CUEPOINT_WORKER and pass no argument.
EOF
}

if [ "$#" -gt 0 ]; then
    worker=$1
    shift
else
    worker=${CUEPOINT_WORKER:-}
fi

case "$worker" in
    ingest | media | analysis | results | scoring | packaging)
        exec "$BIN_DIR/cuepoint-$worker" "$@"
        ;;
    sweep)
        exec "$BIN_DIR/cuepoint" sweep "$@"
        ;;
    cli | cuepoint)
        exec "$BIN_DIR/cuepoint" "$@"
        ;;
    "" | help | -h | --help)
        usage
        exit 2
        ;;
    *)
        echo "cuepoint-entrypoint: unknown worker '$worker'" >&2
        usage
        exit 64
        ;;
esac
