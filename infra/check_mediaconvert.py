#!/usr/bin/env python3
"""Check MediaConvert job settings against MediaConvert's service model (botocore's copy).

    python check_mediaconvert.py SETTINGS.json [...]

Each file holds the `Settings` of a CreateJob request (as cuepoint builds them for the first
media job and the packaging job). Every member name, type, required member, numeric range and
enum value is checked against the `CreateJob` input shape; the first problem per file is listed
with its path. Exit status 1 when any file has a problem, 2 when botocore is missing.

There is no MediaConvert emulator: this is what stands between a settings change and a job
MediaConvert refuses. It needs a Python with botocore (the LocalStack venv of
tests/emulator/localstack.sh has one; tests/run.sh passes it as CUEPOINT_BOTOCORE_PYTHON).
"""
import json
import sys

try:
    import botocore.session
    from botocore.validate import ParamValidator
except ImportError:  # pragma: no cover - reported, not tested
    print("check_mediaconvert.py: botocore is not installed in this Python", file=sys.stderr)
    sys.exit(2)


def enum_problems(shape, value, path):
    """Enum values (botocore's validator checks names, types and ranges, not enums)."""
    out = []
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, v in value.items():
            member = shape.members.get(name)
            if member is not None:
                out += enum_problems(member, v, f"{path}.{name}")
    elif kind == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            out += enum_problems(shape.member, v, f"{path}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            out += enum_problems(shape.value, v, f"{path}.{k}")
    elif kind == "string" and shape.enum and isinstance(value, str) and value not in shape.enum:
        out.append(f"{path}: {value!r} is not one of {sorted(shape.enum)}")
    return out


def main(files):
    model = botocore.session.get_session().get_service_model("mediaconvert")
    create_job = model.operation_model("CreateJob").input_shape
    failed = False
    for f in files:
        with open(f, encoding="utf-8") as fh:
            settings = json.load(fh)
        params = {"Role": "arn:aws:iam::123456789012:role/cuepoint-mediaconvert", "Settings": settings}
        report = ParamValidator().validate(params, create_job)
        problems = [report.generate_report()] if report.has_errors() else []
        problems += enum_problems(create_job, params, "CreateJob")
        if problems:
            failed = True
            print(f"{f}: does not match MediaConvert's CreateJob ({model.api_version}):")
            for p in problems:
                print(f"  {p}")
        else:
            print(f"{f}: matches MediaConvert's CreateJob ({model.api_version})")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
