"""Create cuepoint's AWS resources in LocalStack, routed exactly as infra/routing.json says.

LocalStack runs this from /etc/localstack/init/ready.d/ (deploy/docker-compose.yml mounts it
there, with routing.json at /etc/cuepoint/routing.json). It can also be run by hand against any
emulator: `CUEPOINT_LS_ENDPOINT=http://127.0.0.1:4566 python3 deploy/localstack/init-cuepoint.py`.

Creates, named like the CloudFormation stack with Prefix=cuepoint: the ingest bucket (with
EventBridge notifications) and the output bucket, the asset table (TTL on expiresAt), one queue
and DLQ per routing.json queue, one EventBridge rule per routing.json rule on the default bus, and
the SNS topics with their queue subscriptions. Running it again changes nothing.

Environment: CUEPOINT_LS_ENDPOINT (http://localhost:4566), CUEPOINT_ROUTING
(/etc/cuepoint/routing.json, else infra/routing.json next to this repo), CUEPOINT_PREFIX
(cuepoint), CUEPOINT_INGEST_BUCKET, CUEPOINT_OUTPUT_BUCKET, CUEPOINT_WORKFLOW (cuepoint),
AWS_REGION (us-east-1). Needs boto3 (LocalStack's own interpreter has it).
"""

import json
import os
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("CUEPOINT_LS_ENDPOINT", "http://localhost:4566")
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
PREFIX = os.environ.get("CUEPOINT_PREFIX", "cuepoint")
INGEST_BUCKET = os.environ.get("CUEPOINT_INGEST_BUCKET", f"{PREFIX}-ingest")
OUTPUT_BUCKET = os.environ.get("CUEPOINT_OUTPUT_BUCKET", f"{PREFIX}-output")
WORKFLOW = os.environ.get("CUEPOINT_WORKFLOW", "cuepoint")
TABLE = f"{PREFIX}-assets"


def routing_path() -> Path:
    explicit = os.environ.get("CUEPOINT_ROUTING")
    if explicit:
        return Path(explicit)
    mounted = Path("/etc/cuepoint/routing.json")
    if mounted.exists():
        return mounted
    return Path(__file__).resolve().parents[2] / "infra" / "routing.json"


def substitute(value, names):
    """Replace ${IngestBucket}-style placeholders, as the embedded bus does when it loads routing.json."""
    if isinstance(value, str):
        for key, repl in names.items():
            value = value.replace("${" + key + "}", repl)
        return value
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def create_buckets(s3):
    for bucket in (INGEST_BUCKET, OUTPUT_BUCKET):
        try:
            if REGION == "us-east-1":
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
    # Uploads start the pipeline through EventBridge "Object Created" events.
    s3.put_bucket_notification_configuration(
        Bucket=INGEST_BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


def create_table(ddb):
    try:
        ddb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=TABLE)
    try:
        ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})
    except ClientError as e:
        if "already enabled" not in str(e).lower():
            raise


def queue_arn(sqs, url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def create_queues(sqs, routing):
    """queue name -> (url, arn)."""
    queues = {}
    for q in routing["queues"]:
        dlq_url = sqs.create_queue(QueueName=f"{PREFIX}-{q['name']}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
        url = sqs.create_queue(QueueName=f"{PREFIX}-{q['name']}")["QueueUrl"]
        sqs.set_queue_attributes(
            QueueUrl=url,
            Attributes={
                "VisibilityTimeout": str(q["visibilityTimeoutSeconds"]),
                "MessageRetentionPeriod": "345600",
                "ReceiveMessageWaitTimeSeconds": "20",
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": q["maxReceiveCount"]}
                ),
            },
        )
        queues[q["name"]] = (url, queue_arn(sqs, url))
    return queues


def allow_senders(sqs, queues, senders):
    """Queue policies as in the template: each queue accepts messages only from its source."""
    for name, sources in senders.items():
        url, arn = queues[name]
        statements = [
            {
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": source}},
            }
            for service, source in sources
        ]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": statements})})


def main():
    routing = json.loads(routing_path().read_text(encoding="utf-8"))
    names = {"IngestBucket": INGEST_BUCKET, "WorkflowName": WORKFLOW}
    s3, ddb, sqs, events, sns = (client(s) for s in ("s3", "dynamodb", "sqs", "events", "sns"))

    create_buckets(s3)
    create_table(ddb)
    queues = create_queues(sqs, routing)
    senders = {name: [] for name in queues}

    for rule in routing["rules"]:
        rule_name = f"{PREFIX}-{rule['name']}"
        rule_arn = events.put_rule(
            Name=rule_name,
            EventBusName="default",
            EventPattern=json.dumps(substitute(rule["pattern"], names)),
            State="ENABLED",
        )["RuleArn"]
        events.put_targets(
            Rule=rule_name, EventBusName="default", Targets=[{"Id": f"{rule['queue']}-queue", "Arn": queues[rule["queue"]][1]}]
        )
        senders[rule["queue"]].append(("events.amazonaws.com", rule_arn))

    for topic in routing["topics"]:
        topic_arn = sns.create_topic(Name=f"{PREFIX}-{topic['name']}")["TopicArn"]
        endpoint = queues[topic["queue"]][1]
        existing = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        if not any(s["Endpoint"] == endpoint for s in existing):
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=endpoint,
                Attributes={"RawMessageDelivery": "true" if topic["rawMessageDelivery"] else "false"},
            )
        senders[topic["queue"]].append(("sns.amazonaws.com", topic_arn))

    allow_senders(sqs, queues, {k: v for k, v in senders.items() if v})
    print(
        f"cuepoint resources ready at {ENDPOINT}: buckets {INGEST_BUCKET}, {OUTPUT_BUCKET}; table {TABLE}; "
        f"queues {', '.join(url for url, _ in queues.values())}; "
        f"{len(routing['rules'])} rules; {len(routing['topics'])} topic subscription(s)"
    )


# No __main__ guard: LocalStack's init runner executes the file, it does not import it by name.
main()
