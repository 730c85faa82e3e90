#!/usr/bin/env bash
# CI check of the deployment files. Installs nothing: it needs `cfn-lint` and a Python 3 with
# PyYAML on PATH (or CFN_LINT / PYTHON pointing at them); docs/deploy.md "CI" has the pinned
# install command.
#
#   1. cfn-lint (errors, warnings and informational rules) on every CloudFormation template in infra/
#   2. infra/check_routing.py: the template and deploy/docker-compose.yml route exactly as
#      infra/routing.json says, and its self-test proves that mutated copies are caught
#   3. deploy/test-deploy.sh: the image entry point and deploy.sh --dry-run; shellcheck on the
#      scripts when it is installed
set -euo pipefail

INFRA=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$INFRA")
CFN_LINT=${CFN_LINT:-cfn-lint}
PYTHON=${PYTHON:-python3}

command -v "$CFN_LINT" >/dev/null || { echo "check.sh: $CFN_LINT not found (see docs/deploy.md, CI)" >&2; exit 127; }
"$PYTHON" -c 'import yaml' 2>/dev/null || { echo "check.sh: $PYTHON lacks PyYAML (see docs/deploy.md, CI)" >&2; exit 127; }

# Every CloudFormation template in infra/ (other JSON/YAML there, e.g. MediaConvert job settings,
# is not a template).
templates=()
for f in "$INFRA"/*.yaml "$INFRA"/*.yml "$INFRA"/*.json "$INFRA"/*.template; do
    [ -f "$f" ] && grep -q 'AWSTemplateFormatVersion' "$f" && templates+=("$f")
done
[ "${#templates[@]}" -gt 0 ] || { echo "check.sh: no CloudFormation template found in $INFRA" >&2; exit 1; }

echo "== cfn-lint $("$CFN_LINT" --version 2>&1 | awk '{print $NF}') on ${#templates[@]} template(s)"
"$CFN_LINT" --include-checks I -- "${templates[@]}"
echo "cfn-lint: ${templates[*]#"$ROOT"/} clean"

echo "== routing equivalence"
"$PYTHON" "$INFRA/check_routing.py" --template "$INFRA/cuepoint.yaml" --routing "$INFRA/routing.json" \
    --compose "$ROOT/deploy/docker-compose.yml"
"$PYTHON" "$INFRA/check_routing.py" --self-test --template "$INFRA/cuepoint.yaml" --routing "$INFRA/routing.json" \
    --compose "$ROOT/deploy/docker-compose.yml"

echo "== IAM grants the workers' calls need"
"$PYTHON" "$INFRA/check_iam.py" --template "$INFRA/cuepoint.yaml"
"$PYTHON" "$INFRA/check_iam.py" --self-test --template "$INFRA/cuepoint.yaml"

echo "== deploy/"
bash "$ROOT/deploy/test-deploy.sh"
if command -v shellcheck >/dev/null; then
    shellcheck "$ROOT/deploy/deploy.sh" "$ROOT/deploy/test-deploy.sh" "$ROOT/deploy/entrypoint.sh" "$INFRA/check.sh"
    echo "shellcheck: clean"
else
    echo "shellcheck: not installed, skipped (optional)"
fi
