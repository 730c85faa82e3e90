#!/usr/bin/env python3
"""IAM checks of infra/cuepoint.yaml that cfn-lint cannot make (they need to know what the
workers call):

- `mediaconvert:ListJobs` names no queue or job in its request, so it is authorized only on
  `Resource: "*"`; a grant on a narrower ARN silently denies it (and `find_job` with it).
- Every task role of a worker that can fail an asset writes the asset record (`asset.json`
  under `assets/`) when it does: each needs `s3:PutObject` on the output bucket's `assets/*`.

`--self-test` checks that the two mistakes, put back into a copy, are caught.
"""
import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_routing import load_template  # noqa: E402

# Task roles of the workers that record failures (flow::fail and the sweeper).
FAILING_ROLES = ["IngestTaskRole", "MediaTaskRole", "AnalysisTaskRole", "ResultsTaskRole", "ScoringTaskRole", "PackagingTaskRole", "SweepTaskRole"]


def statements(role: dict):
    for policy in role.get("Properties", {}).get("Policies", []):
        yield from policy.get("PolicyDocument", {}).get("Statement", [])


def as_list(v):
    return v if isinstance(v, list) else [v]


def grants_assets_put(stmt: dict) -> bool:
    if stmt.get("Effect") != "Allow" or "s3:PutObject" not in as_list(stmt.get("Action", [])):
        return False
    return any("OutputBucket.Arn}/assets/*" in str(r) for r in as_list(stmt.get("Resource", [])))


def check(template: dict) -> list[str]:
    problems = []
    for lid, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        for stmt in statements(res):
            if "mediaconvert:ListJobs" in as_list(stmt.get("Action", [])) and as_list(stmt.get("Resource")) != ["*"]:
                problems.append(f"{lid}: mediaconvert:ListJobs granted on {stmt.get('Resource')!r}; it is authorized only on \"*\"")
    for lid in FAILING_ROLES:
        role = template.get("Resources", {}).get(lid)
        if role is None:
            problems.append(f"{lid}: missing")
        elif not any(grants_assets_put(s) for s in statements(role)):
            problems.append(f"{lid}: no s3:PutObject on the output bucket's assets/* (asset.json of a failed asset)")
    return problems


def self_test(template: dict) -> int:
    bad = copy.deepcopy(template)
    for stmt in statements(bad["Resources"]["IngestTaskRole"]):
        if "mediaconvert:ListJobs" in as_list(stmt.get("Action", [])):
            stmt["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:mediaconvert:${AWS::Region}:${AWS::AccountId}:queues/*"}
    for stmt in statements(bad["Resources"]["AnalysisTaskRole"]):
        if grants_assets_put(stmt):
            stmt["Action"] = "s3:GetObject"
    found = check(bad)
    want = ["IngestTaskRole: mediaconvert:ListJobs", "AnalysisTaskRole: no s3:PutObject"]
    missed = [w for w in want if not any(p.startswith(w) for p in found)]
    if missed:
        print(f"check_iam self-test: not caught: {missed}", file=sys.stderr)
        return 1
    print(f"check_iam self-test: {len(want)} planted mistakes caught")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", required=True, type=Path)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    template = load_template(args.template)
    if args.self_test:
        return self_test(template)
    problems = check(template)
    for p in problems:
        print(f"check_iam: {p}", file=sys.stderr)
    if not problems:
        print("check_iam: ListJobs on *, asset records writable by every failing role")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
