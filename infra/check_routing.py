#!/usr/bin/env python3
"""Prove that infra/cuepoint.yaml routes exactly as infra/routing.json says.

routing.json is the one routing definition: the embedded bus loads it, and the CloudFormation
template must carry the same rules. This check compares, and fails loudly on any difference:

  * every AWS::Events::Rule: its name (<Prefix>-<rule name>), event pattern and single target
    queue, against routing.json "rules" -- nothing missing, nothing extra;
  * every SNS subscription: topic, target queue and raw message delivery, against "topics";
  * every work queue: visibility timeout, the default of its max-receive-count parameter, its
    dead-letter queue, and the ECS task that consumes it (command = worker, queue URL variable,
    consumer visibility), against "queues";
  * deploy/docker-compose.yml: one service per worker, reading its own queue with the same
    consumer visibility (the LocalStack resources themselves are created from routing.json).

References are resolved the way routing.json writes placeholders: `!Ref X` becomes "${X}" (the
ingest bucket is the resource IngestBucket, the workflow name the parameter WorkflowName), and
names built with `!Sub ${Prefix}-...` are compared without the prefix.

Why this is Python and reads routing.json itself: what it checks is the CloudFormation
template (YAML with intrinsics) and the compose file, which only this script reads. Of
routing.json it needs the document as written -- `json.loads` and field access, placeholders
left as `${Name}` (the template side is brought to that form, not routing.json substituted) --
so substitution, the pattern language and the definition's validation stay in one module,
`cuepoint_core::routing`, which the embedded bus and the AWS provisioning both load it with. A
pattern that module refuses fails `cargo test -p cuepoint-core` (`the_definition_loads`).

Usage:
  check_routing.py [--template infra/cuepoint.yaml] [--routing infra/routing.json]
                   [--compose deploy/docker-compose.yml]
  check_routing.py --self-test   # mutates copies and proves each mutation is caught

Needs Python 3.9+ and PyYAML. Exit status 0 when equal, 1 on a mismatch, 2 on unusable input.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_TEMPLATE = HERE / "cuepoint.yaml"
DEFAULT_ROUTING = HERE / "routing.json"
DEFAULT_COMPOSE = HERE.parent / "deploy" / "docker-compose.yml"
PREFIX_RE = re.compile(r"^\$\{Prefix\}-(?P<name>[a-z0-9-]+)$")


class InputError(Exception):
    """The template or routing file cannot be read as expected (exit 2)."""


# ---------------------------------------------------------------------------------------------
# Loading CloudFormation YAML: short-form intrinsics become their long form.


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation's short-form tags (!Ref, !Sub, !GetAtt...)."""


def _construct_intrinsic(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::" + tag_suffix: value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"{path}: cannot read the template: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise InputError(f"{path}: no Resources section")
    return doc


def load_compose(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"{path}: cannot read the compose file: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        raise InputError(f"{path}: no services section")
    return doc


def load_routing(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the routing definition: {e}") from e
    for key in ("queues", "rules", "topics"):
        if not isinstance(doc.get(key), list):
            raise InputError(f"{path}: field {key!r} must be a list")
    return doc


# ---------------------------------------------------------------------------------------------
# Resolving values


def resolve(value: Any, where: str) -> Any:
    """Turn a template value into routing.json's form: Ref X -> "${X}", Sub strings as written."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return "${" + str(value["Ref"]) + "}"
        if set(value) == {"Fn::Sub"}:
            sub = value["Fn::Sub"]
            if isinstance(sub, str):
                return sub
            if isinstance(sub, list) and len(sub) == 2 and isinstance(sub[0], str) and isinstance(sub[1], dict):
                text = sub[0]
                for var, repl in sub[1].items():
                    text = text.replace("${" + var + "}", str(resolve(repl, where)))
                return text
            raise InputError(f"{where}: unsupported Fn::Sub form {sub!r}")
        if any(k.startswith("Fn::") or k == "Ref" for k in value):
            raise InputError(f"{where}: unsupported intrinsic {sorted(value)} (only Ref and Sub are understood here)")
        return {k: resolve(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, f"{where}[]") for v in value]
    return value


def normalize_pattern(pattern: Any) -> Any:
    """EventBridge matches arrays as sets: compare them sorted."""
    if isinstance(pattern, dict):
        return {k: normalize_pattern(v) for k, v in sorted(pattern.items())}
    if isinstance(pattern, list):
        items = [normalize_pattern(v) for v in pattern]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return pattern


def unprefixed(value: Any, where: str) -> str:
    """'${Prefix}-ingest' (from !Sub) -> 'ingest'."""
    text = resolve(value, where)
    m = PREFIX_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise InputError(f"{where}: expected a name of the form !Sub ${{Prefix}}-<name>, found {value!r}")
    return m.group("name")


def getatt_target(value: Any, attribute: str, where: str) -> str:
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        resource, attr = value["Fn::GetAtt"]
        if attr == attribute:
            return resource
    raise InputError(f"{where}: expected !GetAtt <resource>.{attribute}, found {value!r}")


def ref_target(value: Any, where: str) -> str:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return value["Ref"]
    raise InputError(f"{where}: expected !Ref <resource>, found {value!r}")


# ---------------------------------------------------------------------------------------------
# The comparison


def of_type(template: dict, rtype: str) -> dict[str, dict]:
    return {lid: r for lid, r in template["Resources"].items() if isinstance(r, dict) and r.get("Type") == rtype}


def queue_names(template: dict) -> dict[str, str]:
    """Logical id -> unprefixed queue name, for every SQS queue."""
    return {lid: unprefixed(r.get("Properties", {}).get("QueueName"), f"{lid}.QueueName") for lid, r in of_type(template, "AWS::SQS::Queue").items()}


def compare(template: dict, routing: dict) -> list[str]:
    """Every difference between the template and routing.json, as readable sentences."""
    problems: list[str] = []
    queues = queue_names(template)
    params = template.get("Parameters", {})

    # Rules -----------------------------------------------------------------------------------
    want_rules = {r["name"]: r for r in routing["rules"]}
    seen_rules: set[str] = set()
    for lid, res in sorted(of_type(template, "AWS::Events::Rule").items()):
        props = res.get("Properties", {})
        name = unprefixed(props.get("Name"), f"{lid}.Name")
        if "EventPattern" not in props:
            problems.append(f"rule {lid} ({name}) has no EventPattern: routing rules are pattern rules")
            continue
        if name in seen_rules:
            problems.append(f"rule name {name!r} appears twice in the template")
        seen_rules.add(name)
        if name not in want_rules:
            problems.append(f"extra rule in the template: {lid} ({name}) is not in routing.json")
            continue
        want = want_rules[name]
        if props.get("EventBusName", "default") != "default":
            problems.append(f"rule {name}: EventBusName {props.get('EventBusName')!r}, routing assumes the default bus")
        if props.get("State", "ENABLED") != "ENABLED":
            problems.append(f"rule {name}: State {props.get('State')!r}, must be ENABLED")
        got_pattern = normalize_pattern(resolve(props["EventPattern"], f"{lid}.EventPattern"))
        want_pattern = normalize_pattern(want["pattern"])
        if got_pattern != want_pattern:
            problems.append(
                f"rule {name}: pattern differs\n    template:     {json.dumps(got_pattern, sort_keys=True)}\n"
                f"    routing.json: {json.dumps(want_pattern, sort_keys=True)}"
            )
        targets = props.get("Targets", [])
        if len(targets) != 1:
            problems.append(f"rule {name}: {len(targets)} targets, routing.json names exactly one queue")
        for t in targets:
            qid = getatt_target(t.get("Arn"), "Arn", f"{lid}.Targets.Arn")
            got_queue = queues.get(qid)
            if got_queue is None:
                problems.append(f"rule {name}: target {qid} is not an SQS queue of this template")
            elif got_queue != want["queue"]:
                problems.append(f"rule {name}: targets queue {got_queue!r}, routing.json says {want['queue']!r}")
            if "InputTransformer" in t or "Input" in t or "InputPath" in t:
                problems.append(f"rule {name}: target rewrites the event; workers expect it whole")
    for missing in sorted(set(want_rules) - seen_rules):
        problems.append(f"missing rule: {missing!r} from routing.json has no AWS::Events::Rule")

    # Topics and their subscriptions ----------------------------------------------------------
    topics = {lid: unprefixed(r.get("Properties", {}).get("TopicName"), f"{lid}.TopicName") for lid, r in of_type(template, "AWS::SNS::Topic").items()}
    want_subs = {(t["name"], t["queue"]): t for t in routing["topics"]}
    seen_subs: set[tuple[str, str]] = set()
    for lid, res in sorted(of_type(template, "AWS::SNS::Subscription").items()):
        props = res.get("Properties", {})
        if props.get("Protocol") != "sqs":
            continue  # e-mail alarms and the like are not routing
        topic_id = ref_target(props.get("TopicArn"), f"{lid}.TopicArn")
        topic = topics.get(topic_id, f"<{topic_id}>")
        qid = getatt_target(props.get("Endpoint"), "Arn", f"{lid}.Endpoint")
        queue = queues.get(qid, f"<{qid}>")
        key = (topic, queue)
        seen_subs.add(key)
        if key not in want_subs:
            problems.append(f"extra subscription: topic {topic!r} -> queue {queue!r} ({lid}) is not in routing.json")
            continue
        raw = props.get("RawMessageDelivery", False)
        raw = raw if isinstance(raw, bool) else str(raw).lower() == "true"
        if raw != bool(want_subs[key]["rawMessageDelivery"]):
            problems.append(f"subscription {topic}->{queue}: RawMessageDelivery {raw}, routing.json says {want_subs[key]['rawMessageDelivery']}")
    for missing in sorted(set(want_subs) - seen_subs):
        problems.append(f"missing subscription: topic {missing[0]!r} -> queue {missing[1]!r}")

    # Queues ----------------------------------------------------------------------------------
    want_queues = {q["name"]: q for q in routing["queues"]}
    by_name = {name: lid for lid, name in queues.items()}
    for name in sorted(set(queues.values()) - set(want_queues)):
        if not name.endswith("-dlq"):
            problems.append(f"extra queue in the template: {name!r} is not in routing.json")
    task_defs = of_type(template, "AWS::ECS::TaskDefinition")
    for name, want in sorted(want_queues.items()):
        lid = by_name.get(name)
        if lid is None:
            problems.append(f"missing queue: {name!r} from routing.json has no AWS::SQS::Queue")
            continue
        props = template["Resources"][lid].get("Properties", {})
        if props.get("VisibilityTimeout") != want["visibilityTimeoutSeconds"]:
            problems.append(f"queue {name}: VisibilityTimeout {props.get('VisibilityTimeout')!r}, routing.json says {want['visibilityTimeoutSeconds']}")
        redrive = props.get("RedrivePolicy") or {}
        mrc = redrive.get("maxReceiveCount")
        if isinstance(mrc, dict) and set(mrc) == {"Ref"}:
            param = params.get(mrc["Ref"])
            mrc_value = param.get("Default") if isinstance(param, dict) else None
            mrc_where = f"parameter {mrc['Ref']} default"
        else:
            mrc_value, mrc_where = mrc, "maxReceiveCount"
        try:
            mrc_int = int(mrc_value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            mrc_int = None
        if mrc_int != want["maxReceiveCount"]:
            problems.append(f"queue {name}: {mrc_where} is {mrc_value!r}, routing.json says {want['maxReceiveCount']}")
        dlq = redrive.get("deadLetterTargetArn")
        try:
            dlq_name = queues.get(getatt_target(dlq, "Arn", f"{lid}.RedrivePolicy"))
        except InputError as e:
            problems.append(str(e))
            dlq_name = None
        if dlq_name != f"{name}-dlq":
            problems.append(f"queue {name}: dead-letter queue is {dlq_name!r}, expected {name + '-dlq'!r}")
        problems.extend(check_consumer(task_defs, name, lid, want))
    return problems


def check_consumer(task_defs: dict[str, dict], queue: str, queue_lid: str, want: dict) -> list[str]:
    """Exactly one task runs worker `want['worker']` with this queue's URL and visibility."""
    env_key = f"CUEPOINT_AWS__QUEUE_URLS__{queue.upper()}"
    consumers = []
    for lid, td in task_defs.items():
        for c in td.get("Properties", {}).get("ContainerDefinitions", []):
            command = c.get("Command") or []
            env = {e.get("Name"): e.get("Value") for e in c.get("Environment", [])}
            if command[:1] == [want["worker"]]:
                consumers.append((lid, env))
    if len(consumers) != 1:
        return [f"queue {queue}: {len(consumers)} task definitions run worker {want['worker']!r}, expected 1"]
    lid, env = consumers[0]
    problems = []
    if env.get(env_key) != {"Ref": queue_lid}:
        problems.append(f"queue {queue}: task {lid} has {env_key}={env.get(env_key)!r}, expected !Ref {queue_lid}")
    vis = env.get("CUEPOINT_CONSUMER__VISIBILITY_SECONDS")
    if str(vis) != str(want["visibilityTimeoutSeconds"]):
        problems.append(f"queue {queue}: task {lid} sets CUEPOINT_CONSUMER__VISIBILITY_SECONDS={vis!r}, routing.json says {want['visibilityTimeoutSeconds']}")
    others = sorted(k for k in env if k.startswith("CUEPOINT_AWS__QUEUE_URLS__") and k != env_key)
    if others:
        problems.append(f"queue {queue}: task {lid} also gets {others}; a worker may touch only its own queue")
    return problems


def compare_compose(compose: dict, routing: dict) -> list[str]:
    """deploy/docker-compose.yml runs one service per worker on its own queue, as routing.json says."""
    problems = []
    services = compose["services"]
    for q in routing["queues"]:
        name, worker = q["name"], q["worker"]
        svc = services.get(worker)
        if not isinstance(svc, dict):
            problems.append(f"compose: no service {worker!r} for queue {name!r}")
            continue
        if (svc.get("command") or [])[:1] != [worker]:
            problems.append(f"compose: service {worker} runs {svc.get('command')!r}, expected [{worker!r}]")
        env = svc.get("environment") or {}
        if not isinstance(env, dict):
            problems.append(f"compose: service {worker} environment must be a mapping")
            continue
        key = f"CUEPOINT_AWS__QUEUE_URLS__{name.upper()}"
        url = str(env.get(key, ""))
        if not re.search(r"/[a-z0-9-]+-" + re.escape(name) + r"$", url):
            problems.append(f"compose: service {worker} has {key}={url!r}, expected a URL of queue <prefix>-{name}")
        if str(env.get("CUEPOINT_CONSUMER__VISIBILITY_SECONDS")) != str(q["visibilityTimeoutSeconds"]):
            problems.append(
                f"compose: service {worker} sets CUEPOINT_CONSUMER__VISIBILITY_SECONDS="
                f"{env.get('CUEPOINT_CONSUMER__VISIBILITY_SECONDS')!r}, routing.json says {q['visibilityTimeoutSeconds']}"
            )
        others = sorted(k for k in env if k.startswith("CUEPOINT_AWS__QUEUE_URLS__") and k != key)
        if others:
            problems.append(f"compose: service {worker} also gets {others}; a worker may touch only its own queue")
    return problems


# ---------------------------------------------------------------------------------------------
# Self-test: each mutation of a copy must be caught.


def _rule(t: dict, lid: str) -> dict:
    return t["Resources"][lid]["Properties"]


def _mutations() -> list[tuple[str, Callable[[dict, dict, dict], None]]]:
    def set_path(d: dict, path: list, value: Any) -> None:
        for p in path[:-1]:
            d = d[p]
        d[path[-1]] = value

    return [
        ("detail-type changed", lambda t, r, c: set_path(_rule(t, "PipelineMediaPreparedRule"), ["EventPattern", "detail-type"], ["Media Ready"])),
        ("source added", lambda t, r, c: _rule(t, "PipelineAnalysesCompletedRule")["EventPattern"]["source"].append("cuepoint.other")),
        ("workflow filter hard-coded", lambda t, r, c: set_path(_rule(t, "MediaConvertJobFinishedRule"), ["EventPattern", "detail", "userMetadata", "workflow"], ["cuepoint"])),
        ("status filter dropped", lambda t, r, c: _rule(t, "MediaConvertJobFinishedRule")["EventPattern"]["detail"].pop("status")),
        ("bucket filter points elsewhere", lambda t, r, c: set_path(_rule(t, "IngestObjectCreatedRule"), ["EventPattern", "detail", "bucket", "name"], [{"Ref": "OutputBucket"}])),
        ("target queue swapped", lambda t, r, c: set_path(_rule(t, "PipelineAnalysesCompletedRule")["Targets"][0], ["Arn"], {"Fn::GetAtt": ["AnalysisQueue", "Arn"]})),
        ("second target added", lambda t, r, c: _rule(t, "PipelineMediaPreparedRule")["Targets"].append({"Id": "x", "Arn": {"Fn::GetAtt": ["ScoringQueue", "Arn"]}})),
        ("rule removed", lambda t, r, c: t["Resources"].pop("PipelineMediaPreparedRule")),
        ("extra rule added", lambda t, r, c: t["Resources"].__setitem__("ExtraRule", copy.deepcopy(dict(t["Resources"]["PipelineMediaPreparedRule"], Properties=dict(_rule(t, "PipelineMediaPreparedRule"), Name={"Fn::Sub": "${Prefix}-pipeline-extra"}))))),
        ("rule disabled", lambda t, r, c: set_path(_rule(t, "IngestObjectCreatedRule"), ["State"], "DISABLED")),
        ("visibility timeout changed", lambda t, r, c: set_path(t["Resources"]["AnalysisQueue"]["Properties"], ["VisibilityTimeout"], 300)),
        ("max receive default changed", lambda t, r, c: set_path(t["Parameters"]["AnalysisMaxReceiveCount"], ["Default"], 5)),
        ("raw delivery switched on", lambda t, r, c: set_path(t["Resources"]["RekognitionResultsSubscription"]["Properties"], ["RawMessageDelivery"], True)),
        ("subscription removed", lambda t, r, c: t["Resources"].pop("RekognitionResultsSubscription")),
        ("consumer reads another queue", lambda t, r, c: set_path(t["Resources"]["ScoringTaskDefinition"]["Properties"]["ContainerDefinitions"][0], ["Command"], ["results"])),
        ("consumer visibility drifted", lambda t, r, c: [e.__setitem__("Value", "30") for e in t["Resources"]["MediaTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"] if e["Name"] == "CUEPOINT_CONSUMER__VISIBILITY_SECONDS"]),
        ("routing.json gains a rule", lambda t, r, c: r["rules"].append({"name": "pipeline-asset-completed", "queue": "scoring", "pattern": {"source": ["cuepoint.pipeline"], "detail-type": ["Asset Completed"]}})),
        ("routing.json changes a queue", lambda t, r, c: r["queues"][0].__setitem__("maxReceiveCount", 7)),
        ("compose visibility drifted", lambda t, r, c: c["services"]["analysis"]["environment"].__setitem__("CUEPOINT_CONSUMER__VISIBILITY_SECONDS", "300")),
        ("compose worker reads another queue", lambda t, r, c: c["services"]["scoring"]["environment"].__setitem__("CUEPOINT_AWS__QUEUE_URLS__SCORING", "http://localstack:4566/queue/us-east-1/000000000000/cuepoint-results")),
    ]


def check_all(template: dict, routing: dict, compose: dict | None) -> list[str]:
    problems = compare(template, routing)
    if compose is not None:
        problems += compare_compose(compose, routing)
    return problems


def self_test(template_path: Path, routing_path: Path, compose_path: Path) -> int:
    template, routing, compose = load_template(template_path), load_routing(routing_path), load_compose(compose_path)
    passed = failed = 0
    problems = check_all(template, routing, compose)
    if problems:
        print("self-test: the unmodified template and routing.json already differ:", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        failed += 1
    else:
        passed += 1
        print("ok   unmodified template and compose file match routing.json")
    for label, mutate in _mutations():
        t, r, c = copy.deepcopy(template), copy.deepcopy(routing), copy.deepcopy(compose)
        mutate(t, r, c)
        try:
            found = check_all(t, r, c)
        except InputError as e:
            found = [str(e)]
        if found:
            passed += 1
            print(f"ok   caught: {label}: {found[0].splitlines()[0]}")
        else:
            failed += 1
            print(f"FAIL not caught: {label}", file=sys.stderr)
    print(f"check_routing self-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    ap.add_argument("--routing", type=Path, default=DEFAULT_ROUTING)
    ap.add_argument("--compose", type=Path, default=DEFAULT_COMPOSE, help="also check this compose file")
    ap.add_argument("--no-compose", action="store_true", help="skip the compose file")
    ap.add_argument("--self-test", action="store_true", help="prove that mutated copies are caught")
    args = ap.parse_args(argv)
    try:
        if args.self_test:
            return self_test(args.template, args.routing, args.compose)
        compose = None if args.no_compose else load_compose(args.compose)
        problems = check_all(load_template(args.template), load_routing(args.routing), compose)
    except InputError as e:
        print(f"check_routing: {e}", file=sys.stderr)
        return 2
    if problems:
        print(f"check_routing: MISMATCH between {args.routing} and the deployment files:", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    routing = load_routing(args.routing)
    checked = args.template.name + ("" if compose is None else f" and {args.compose.name}")
    print(
        f"check_routing: {checked} match {args.routing.name}: {len(routing['rules'])} rule(s), "
        f"{len(routing['topics'])} topic subscription(s), {len(routing['queues'])} queue(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
