#!/usr/bin/env bash
# The project's test command (README: "Run the tests").
#
#   tests/run.sh            everything: embedded workspace tests, infra checks, AWS tests on LocalStack
#   tests/run.sh --no-aws   skip the AWS part (no emulator, no AWS SDK build)
#
# First installs what the tests need when it is missing (tests/install.sh: FFmpeg, espeak-ng,
# Python venv, cfn-lint, the emulator's prerequisites, the offline models); caches live under
# ~/.cache/cuepoint, outside the clone, and so does the Cargo target dir unless CARGO_TARGET_DIR
# is set. The AWS part starts LocalStack with tests/emulator/localstack.sh and always stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

AWS=1
for a in "$@"; do
  case "$a" in
    --no-aws) AWS=0 ;;
    *) echo "usage: tests/run.sh [--no-aws]" >&2; exit 2 ;;
  esac
done

step() { printf '\n==== %s\n' "$*"; }
t0=$(date +%s)

step "install what the tests need (tests/install.sh)"
# shellcheck source=tests/install.sh
source tests/install.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CUEPOINT_CACHE/target}
AWS=$AWS install_test_deps
install_models
install_web_deps
# Tests that run a real model fail, rather than skip, when it is missing.
export CUEPOINT_REQUIRE_MODELS=1

step "hygiene: rustfmt, and clippy with warnings as errors (the AWS feature too unless --no-aws)"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
if [ "$AWS" = 1 ]; then
  cargo clippy --locked -p cuepoint-aws -p cuepoint-workers -p cuepoint-tests \
    --features cuepoint-workers/aws,cuepoint-tests/aws --all-targets -- -D warnings
fi

step "embedded: unit, property, end-to-end, durability, chaos and bad-input tests (no AWS SDK)"
cargo test --locked -- --test-threads 2

step "review app: a real browser (Chromium via playwright-core) against cuepoint serve (tests/browser/)"
cargo build --locked --bin cuepoint
CUEPOINT_BIN="$CARGO_TARGET_DIR/debug/cuepoint" node --test tests/browser/

step "infra: cfn-lint, routing equivalence, deploy dry-run"
infra/check.sh

if [ "$AWS" = 1 ]; then
  step "aws: build the AWS adapters and AWS-backed tests"
  cargo build --locked -p cuepoint-aws --tests -p cuepoint-workers --features cuepoint-workers/aws --bins
  step "aws: LocalStack"
  tests/emulator/localstack.sh start
  trap 'tests/emulator/localstack.sh stop' EXIT
  eval "$(tests/emulator/localstack.sh env)"
  cargo test --locked -p cuepoint-aws -- --include-ignored --test-threads 2
  step "aws: end to end on LocalStack (real adapters, local media engine)"
  cargo test --locked -p cuepoint-tests --features aws --test e2e_localstack -- --include-ignored --test-threads 1
  step "aws: chaos on LocalStack (the fault-injection harness over the AWS adapters, docs/reliability.md)"
  CUEPOINT_CHAOS_TARGET=localstack CUEPOINT_CHAOS_ASSETS=30 cargo test --locked -p cuepoint-tests --features aws --test chaos
fi

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - t0 ))"
