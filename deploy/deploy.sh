#!/usr/bin/env bash
# Build the cuepoint images, push them to ECR and deploy infra/cuepoint.yaml with CloudFormation.
#
#   deploy/deploy.sh --vpc vpc-0abc --subnets subnet-1,subnet-2 [options] [--param Key=Value ...]
#   deploy/deploy.sh --dry-run ...     print every command instead of running it (needs neither
#                                      docker nor the aws CLI)
#
# Options (environment variable in brackets):
#   --region R          AWS region                              [AWS_REGION, else us-east-1]
#   --stack NAME        CloudFormation stack name               [CUEPOINT_STACK, else cuepoint]
#   --prefix P          Prefix parameter of the stack           [CUEPOINT_PREFIX, else cuepoint]
#   --repo NAME         ECR repository                          [CUEPOINT_ECR_REPO, else cuepoint]
#   --tag TAG           image tag                               [CUEPOINT_IMAGE_TAG, else git commit]
#   --platform P        linux/amd64 or linux/arm64              [CUEPOINT_PLATFORM, else linux/amd64]
#   --vpc ID            VpcId parameter                         [CUEPOINT_VPC_ID]
#   --subnets A,B       Subnets parameter                       [CUEPOINT_SUBNETS]
#   --account ID        skip the STS lookup (dry runs)          [AWS_ACCOUNT_ID]
#   --artifacts-bucket  bucket for the packaged template        [CUEPOINT_ARTIFACTS_BUCKET,
#                                                                else cuepoint-deploy-<account>-<region>]
#   --param K=V         extra parameter override (repeatable), e.g. --param MinTasks=1
#   --skip-build        deploy images that are already in ECR under --tag
#   --dry-run           print the commands, run nothing
#
# Steps: make sure the ECR repository and the artifacts bucket exist; log Docker in to ECR; build
# the "aws" and "ffmpeg" targets of deploy/Dockerfile; tag and push both (tags are immutable, so an
# existing tag is never rebuilt); `aws cloudformation deploy` with the image URIs and parameters;
# print the stack outputs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATE="$ROOT/infra/cuepoint.yaml"
DOCKERFILE="$ROOT/deploy/Dockerfile"

REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}
STACK=${CUEPOINT_STACK:-cuepoint}
PREFIX=${CUEPOINT_PREFIX:-cuepoint}
REPO=${CUEPOINT_ECR_REPO:-cuepoint}
TAG=${CUEPOINT_IMAGE_TAG:-}
PLATFORM=${CUEPOINT_PLATFORM:-linux/amd64}
VPC=${CUEPOINT_VPC_ID:-}
SUBNETS=${CUEPOINT_SUBNETS:-}
ACCOUNT=${AWS_ACCOUNT_ID:-}
ARTIFACTS=${CUEPOINT_ARTIFACTS_BUCKET:-}
DRY_RUN=0
SKIP_BUILD=0
EXTRA_PARAMS=()

die() { echo "deploy.sh: $*" >&2; exit 2; }
note() { echo "# $*"; }

need_value() {
    if [ "$#" -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value"; fi
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --skip-build) SKIP_BUILD=1 ;;
        --region) need_value "$@"; REGION=$2; shift ;;
        --stack) need_value "$@"; STACK=$2; shift ;;
        --prefix) need_value "$@"; PREFIX=$2; shift ;;
        --repo) need_value "$@"; REPO=$2; shift ;;
        --tag) need_value "$@"; TAG=$2; shift ;;
        --platform) need_value "$@"; PLATFORM=$2; shift ;;
        --vpc) need_value "$@"; VPC=$2; shift ;;
        --subnets) need_value "$@"; SUBNETS=$2; shift ;;
        --account) need_value "$@"; ACCOUNT=$2; shift ;;
        --artifacts-bucket) need_value "$@"; ARTIFACTS=$2; shift ;;
        --param) need_value "$@"; [[ "$2" == *=* ]] || die "--param wants Key=Value, got '$2'"; EXTRA_PARAMS+=("$2"); shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

case "$PLATFORM" in
    linux/amd64) ARCH=X86_64 ;;
    linux/arm64) ARCH=ARM64 ;;
    *) die "--platform must be linux/amd64 or linux/arm64, got '$PLATFORM'" ;;
esac
[[ "$REGION" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]$ ]] || die "region '$REGION' does not look like an AWS region"
[[ "$PREFIX" =~ ^[a-z][a-z0-9-]{1,19}$ ]] || die "prefix '$PREFIX' must match ^[a-z][a-z0-9-]{1,19}$"

# One word, quoted for a POSIX shell only when it needs it.
quote() {
    if [[ "$1" =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

# Print a command as it would run (copy-pastable).
show() {
    printf '+'
    local word
    for word in "$@"; do printf ' %s' "$(quote "$word")"; done
    printf '\n'
}

# Print a command, then run it unless this is a dry run.
run() {
    show "$@"
    [ "$DRY_RUN" = 1 ] || "$@"
}

# Commands whose answer only decides what to do next: in a dry run, print them and answer $1.
probe() {
    local dry_answer=$1
    shift
    show "$@"
    if [ "$DRY_RUN" = 1 ]; then
        return "$dry_answer"
    fi
    "$@" >/dev/null 2>&1
}

if [ "$DRY_RUN" = 1 ]; then
    note "dry run: nothing below is executed"
    [ -n "$VPC" ] || { VPC="<vpc-id>"; note "no --vpc given; using a placeholder"; }
    [ -n "$SUBNETS" ] || { SUBNETS="<subnet-a>,<subnet-b>"; note "no --subnets given; using placeholders"; }
else
    [ -n "$VPC" ] || die "--vpc (or CUEPOINT_VPC_ID) is required"
    [ -n "$SUBNETS" ] || die "--subnets (or CUEPOINT_SUBNETS) is required"
    command -v aws >/dev/null || die "the aws CLI is not installed"
    [ "$SKIP_BUILD" = 1 ] || command -v docker >/dev/null || die "docker is not installed (or use --skip-build)"
fi

if [ -z "$TAG" ]; then
    if TAG=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null); then
        # Tags are immutable in ECR: a dirty tree gets its own tag instead of overwriting one.
        if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
            TAG="$TAG-dirty-$(date -u +%Y%m%d%H%M%S)"
        fi
    else
        TAG="manual-$(date -u +%Y%m%d%H%M%S)"
    fi
fi

if [ -z "$ACCOUNT" ]; then
    if [ "$DRY_RUN" = 1 ]; then
        run aws sts get-caller-identity --query Account --output text
        ACCOUNT="<account-id>"
    else
        ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
    fi
fi
[ -n "$ARTIFACTS" ] || ARTIFACTS="$PREFIX-deploy-$ACCOUNT-$REGION"

REGISTRY="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com"
IMAGE="$REGISTRY/$REPO:$TAG"
FFMPEG_IMAGE="$REGISTRY/$REPO:$TAG-ffmpeg"

note "stack $STACK in $REGION, account $ACCOUNT, images $IMAGE and $FFMPEG_IMAGE ($PLATFORM)"

# 1. ECR repository (immutable tags, scanned on push).
note "1. ECR repository"
if ! probe 1 aws ecr describe-repositories --region "$REGION" --repository-names "$REPO"; then
    run aws ecr create-repository --region "$REGION" --repository-name "$REPO" \
        --image-tag-mutability IMMUTABLE --image-scanning-configuration scanOnPush=true
fi

# 2. Artifacts bucket for the packaged template (the template is larger than the 51,200 bytes
#    CloudFormation accepts inline).
note "2. artifacts bucket"
if ! probe 1 aws s3api head-bucket --bucket "$ARTIFACTS"; then
    if [ "$REGION" = us-east-1 ]; then
        run aws s3api create-bucket --bucket "$ARTIFACTS" --region "$REGION"
    else
        run aws s3api create-bucket --bucket "$ARTIFACTS" --region "$REGION" \
            --create-bucket-configuration "LocationConstraint=$REGION"
    fi
    run aws s3api put-public-access-block --bucket "$ARTIFACTS" \
        --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
fi

# 3. Images: build, tag, push, unless this tag is already in the repository.
if [ "$SKIP_BUILD" = 1 ]; then
    note "3. images: --skip-build, using $IMAGE and $FFMPEG_IMAGE as they are"
else
    note "3. images"
    if [ "$DRY_RUN" = 1 ]; then
        note "   (a real run skips build and push when the tag already exists)"
        run aws ecr describe-images --region "$REGION" --repository-name "$REPO" --image-ids "imageTag=$TAG"
        exists=1
    elif aws ecr describe-images --region "$REGION" --repository-name "$REPO" --image-ids "imageTag=$TAG" >/dev/null 2>&1; then
        exists=0
    else
        exists=1
    fi
    if [ "$exists" = 0 ]; then
        note "   $IMAGE already exists; not rebuilding"
    else
        printf '+ aws ecr get-login-password --region %s | docker login --username AWS --password-stdin %s\n' "$(quote "$REGION")" "$(quote "$REGISTRY")"
        if [ "$DRY_RUN" = 0 ]; then
            aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$REGISTRY"
        fi
        run docker build --platform "$PLATFORM" -f "$DOCKERFILE" --target aws -t "cuepoint:$TAG" "$ROOT"
        run docker build --platform "$PLATFORM" -f "$DOCKERFILE" --target ffmpeg -t "cuepoint:$TAG-ffmpeg" "$ROOT"
        run docker tag "cuepoint:$TAG" "$IMAGE"
        run docker tag "cuepoint:$TAG-ffmpeg" "$FFMPEG_IMAGE"
        run docker push "$IMAGE"
        run docker push "$FFMPEG_IMAGE"
    fi
fi

# 4. The stack.
note "4. CloudFormation"
PARAMS=(
    "Prefix=$PREFIX"
    "ImageUri=$IMAGE"
    "FfmpegImageUri=$FFMPEG_IMAGE"
    "CpuArchitecture=$ARCH"
    "VpcId=$VPC"
    "Subnets=$SUBNETS"
)
PARAMS+=("${EXTRA_PARAMS[@]+"${EXTRA_PARAMS[@]}"}")
run aws cloudformation deploy --region "$REGION" --stack-name "$STACK" \
    --template-file "$TEMPLATE" --s3-bucket "$ARTIFACTS" --s3-prefix "$STACK" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --tags "project=cuepoint" "cuepoint:stack=$STACK" \
    --parameter-overrides "${PARAMS[@]}"

# 5. Where things are.
note "5. outputs"
run aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK" \
    --query "Stacks[0].Outputs[].[OutputKey,OutputValue]" --output table
