#!/usr/bin/env bash
# The project's test command (README: "Run the tests").
#
#   tests/run.sh            everything: embedded workspace tests, infra checks, AWS tests on LocalStack
#   tests/run.sh --no-aws   skip the AWS part (no emulator, no AWS SDK build)
#
# Needs FFmpeg on PATH; the infra checks need cfn-lint and PyYAML (CFN_LINT / PYTHON, see
# .ci/run); the AWS part starts LocalStack with tests/emulator/localstack.sh and always stops it.
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

step "embedded: unit, property, end-to-end, durability, chaos and bad-input tests (no AWS SDK)"
cargo test --locked -- --test-threads 2

step "infra: cfn-lint, routing equivalence, deploy dry-run"
infra/check.sh

if [ "$AWS" = 1 ]; then
  step "aws: build the AWS adapters and AWS-backed tests"
  cargo build --locked -p cuepoint-aws --tests -p cuepoint-workers --features cuepoint-workers/aws --bins
  step "aws: LocalStack"
  tests/emulator/localstack.sh start
  trap 'tests/emulator/localstack.sh stop' EXIT
  eval "$(tests/emulator/localstack.sh env)"
  cargo test --locked -p cuepoint-aws -- --test-threads 2
  step "aws: end to end on LocalStack (real adapters, local media engine)"
  cargo test --locked -p cuepoint-tests --features aws --test e2e_localstack -- --test-threads 1
  step "aws: chaos on LocalStack (the fault-injection harness over the AWS adapters, docs/reliability.md)"
  CUEPOINT_CHAOS_TARGET=localstack CUEPOINT_CHAOS_ASSETS=30 cargo test --locked -p cuepoint-tests --features aws --test chaos
fi

printf '\nall tests passed in %ss\n' "$(( $(date +%s) - t0 ))"
