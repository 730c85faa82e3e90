#!/usr/bin/env bash
# Tests of deploy/: the entry point picks the right program, and deploy.sh --dry-run prints every
# step without docker or the aws CLI. Needs only bash and coreutils. Run by infra/check.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1" >&2; }

# expect LABEL WANT GOT
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: wanted [$2], got [$3]"; fi; }
# expect_line LABEL PATTERN FILE: some line of FILE matches the extended regex
expect_line() { if grep -Eq -- "$2" "$3"; then pass "$1"; else fail "$1: no line matches /$2/ in:"; sed 's/^/     /' "$3" >&2; fi; }

# --- entrypoint.sh: fake binaries that print how they were called ------------------------------
bin="$WORK/bin"
mkdir -p "$bin"
for b in cuepoint cuepoint-ingest cuepoint-media cuepoint-analysis cuepoint-results cuepoint-scoring cuepoint-packaging; do
    printf '#!/bin/sh\necho "%s $*"\n' "$b" >"$bin/$b"
    chmod +x "$bin/$b"
done
ep() { CUEPOINT_BIN_DIR="$bin" sh "$HERE/entrypoint.sh" "$@"; }

for w in ingest media analysis results scoring packaging; do
    expect "entrypoint runs $w" "cuepoint-$w " "$(ep "$w")"
done
expect "entrypoint passes arguments" "cuepoint-results --once" "$(ep results --once)"
expect "entrypoint runs sweep" "cuepoint sweep" "$(ep sweep)"
expect "entrypoint runs the CLI" "cuepoint dlq replay analysis" "$(ep cli dlq replay analysis)"
expect "entrypoint reads CUEPOINT_WORKER" "cuepoint-media " "$(CUEPOINT_WORKER=media ep)"
set +e
ep bogus >/dev/null 2>&1; rc=$?
set -e
expect "entrypoint refuses an unknown worker" 64 "$rc"
set +e
ep >/dev/null 2>&1; rc=$?
set -e
expect "entrypoint without a worker prints usage" 2 "$rc"

# --- deploy.sh --dry-run, with a PATH that has neither docker nor aws ---------------------------
nopath="$WORK/nopath"
mkdir -p "$nopath"
for tool in bash sh git date sed grep dirname mktemp cat env printf; do
    src=$(command -v "$tool" || true)
    [ -n "$src" ] && ln -sf "$src" "$nopath/$tool"
done
out="$WORK/dry-run.txt"
set +e
env -i HOME="$WORK" PATH="$nopath" bash "$HERE/deploy.sh" --dry-run --region eu-west-1 --tag t1 \
    --account 123456789012 --vpc vpc-0abc --subnets subnet-1,subnet-2 --param MinTasks=1 >"$out" 2>&1
rc=$?
set -e
expect "dry run succeeds without docker or aws" 0 "$rc"
reg='123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com'
expect_line "dry run creates the ECR repository" '^\+ aws ecr create-repository --region eu-west-1 --repository-name cuepoint .*IMMUTABLE' "$out"
expect_line "dry run creates the artifacts bucket outside us-east-1" '^\+ aws s3api create-bucket --bucket cuepoint-deploy-123456789012-eu-west-1 .*LocationConstraint=eu-west-1' "$out"
expect_line "dry run logs in to ECR" "^\+ aws ecr get-login-password --region eu-west-1 \| docker login --username AWS --password-stdin $reg\$" "$out"
expect_line "dry run builds the aws target" '^\+ docker build --platform linux/amd64 -f .*/deploy/Dockerfile --target aws -t cuepoint:t1 ' "$out"
expect_line "dry run builds the ffmpeg target" '^\+ docker build .* --target ffmpeg -t cuepoint:t1-ffmpeg ' "$out"
expect_line "dry run tags the image" "^\+ docker tag cuepoint:t1 $reg/cuepoint:t1\$" "$out"
expect_line "dry run pushes both images" "^\+ docker push $reg/cuepoint:t1-ffmpeg\$" "$out"
expect_line "dry run deploys the stack with the images" "^\+ aws cloudformation deploy --region eu-west-1 --stack-name cuepoint .*--parameter-overrides Prefix=cuepoint ImageUri=$reg/cuepoint:t1 FfmpegImageUri=$reg/cuepoint:t1-ffmpeg CpuArchitecture=X86_64 VpcId=vpc-0abc Subnets=subnet-1,subnet-2 MinTasks=1\$" "$out"
expect_line "dry run prints the outputs" '^\+ aws cloudformation describe-stacks --region eu-west-1 --stack-name cuepoint ' "$out"

set +e
env -i HOME="$WORK" PATH="$nopath" bash "$HERE/deploy.sh" --dry-run --platform linux/s390x >/dev/null 2>&1; rc=$?
set -e
expect "deploy.sh refuses an unknown platform" 2 "$rc"
set +e
env -i HOME="$WORK" PATH="$nopath" bash "$HERE/deploy.sh" --vpc vpc-1 --subnets subnet-1 --account 1 >/dev/null 2>&1; rc=$?
set -e
expect "a real run without the aws CLI stops before doing anything" 2 "$rc"

echo "deploy tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
