"""What a job costs in AWS requests, counted by the emulator's own request recorder.

moto's server records every request it serves once told to (``/moto-api/recorder/...``): headers,
method, URL and body. This reads a recording back as (service, operation, resource) and sorts each
request into what it was for, given the names of one stack's resources:

    job        the job's own path: its table (but Query), bucket and job queue
    events     Celery's events and remote control: SNS, and the SQS queues under the control prefix
    background everything else: listings and the stall sweeper's queries, other stacks' traffic

Used by ``make bench`` (scripts/bench.py) and by tests/integration/test_job_cost.py.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

import requests

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_TASK_EVENT = re.compile(r'"type":\s*"(task-[a-z-]+)"')


@dataclass(frozen=True)
class AwsRequest:
    """One request the emulator served."""

    service: str  # dynamodb, s3, sqs, sns, ...
    operation: str  # UpdateItem, PutObject, ReceiveMessage, Publish, ...
    resource: str  # table name, bucket, queue URL or topic ARN ("" when none)
    # An SNS publish of task events: their types (task-received, ...). The worker buffers task
    # events and publishes them in batches, so one publish may carry several.
    task_events: tuple[str, ...] = ()
    # From scripts/emulator.py's TimedRecorder (epoch seconds, the emulator's clock): when the
    # request came and when its answer went, the sizes of both, and for a receive how many
    # messages it returned.
    started_at: float = 0.0
    ended_at: float = 0.0
    request_bytes: int = 0
    response_bytes: int = 0
    receipts: tuple[str, ...] = ()  # a receive: the messages it returned; a delete: the one it deleted
    key: str = ""  # S3: the object's key
    item: str = ""  # DynamoDB: the jobId of the item a request names
    message: str = ""  # an SQS send: the message body
    sets_state: str = ""  # a DynamoDB PutItem or UpdateItem: the value it gives `state` ("" when none)
    # A DynamoDB UpdateItem: the `checkpoint` it sets, as JSON of its low-level value; "-" when it
    # removes it; "" when it leaves it as it was.
    sets_checkpoint: str = ""

    @property
    def messages(self) -> int:
        return len(self.receipts) if self.operation == "ReceiveMessage" else 0


@dataclass(frozen=True)
class StackNames:
    """The resources of one stack, to tell its job path from everything else."""

    table: str
    bucket: str
    queue_url: str
    control_prefix: str


@contextmanager
def recording(endpoint: str) -> Iterator[list[AwsRequest]]:
    """Record the emulator's requests while the block runs; the list is filled when it ends."""
    served: list[AwsRequest] = []
    requests.post(f"{endpoint}/moto-api/recorder/reset-recording", timeout=10).raise_for_status()
    requests.post(f"{endpoint}/moto-api/recorder/start-recording", timeout=10).raise_for_status()
    try:
        yield served
    finally:
        requests.post(f"{endpoint}/moto-api/recorder/stop-recording", timeout=10).raise_for_status()
        served.extend(recorded_so_far(endpoint))


def recorded_so_far(endpoint: str) -> list[AwsRequest]:
    """What the recorder holds now (it keeps recording)."""
    raw = requests.get(f"{endpoint}/moto-api/recorder/download-recording", timeout=30)
    raw.raise_for_status()
    return [parse(json.loads(line)) for line in raw.text.splitlines() if line.strip()]


def parse(entry: dict) -> AwsRequest:
    """One recorded request as (service, operation, resource), with its timing and sizes."""
    request = _parse(entry)
    message = _message(request, entry)
    return replace(
        request,
        started_at=entry.get("startedAt", 0.0),
        ended_at=entry.get("endedAt", 0.0),
        # What SQS bills a send by: its message; anything else, the request's body.
        request_bytes=len(message.encode("utf-8")) if message else len(_body(entry)),
        message=message,
        response_bytes=entry.get("responseBytes", 0),
        receipts=tuple(entry.get("receipts", ()))
        if request.operation == "ReceiveMessage"
        else _deleted(request, entry),
        key=unquote(urlsplit(entry["url"]).path).lstrip("/").partition("/")[2] if request.service == "s3" else "",
        **(_dynamo_item(request.operation, _json(_body(entry))) if request.service == "dynamodb" else {}),
    )


def _dynamo_item(operation: str, fields: dict) -> dict[str, str]:
    """A DynamoDB request's ``item`` (the jobId it names) and ``sets_state``."""
    key = fields.get("Key") or fields.get("Item") or {}
    job_id = key.get("jobId", {}).get("S", "") if isinstance(key, dict) else ""
    return {"item": job_id, "sets_state": _state_set(operation, fields), "sets_checkpoint": _checkpoint_set(fields)}


def _state_set(operation: str, fields: dict) -> str:
    """What a DynamoDB write sets `state` to: the PutItem's attribute, or the value an UpdateItem's
    SET assigns it through a name placeholder (`state` is a reserved word); "" when it sets none."""
    if operation not in ("PutItem", "UpdateItem"):
        return ""
    if operation == "PutItem":
        return fields.get("Item", {}).get("state", {}).get("S", "")
    names = [name for name, value in fields.get("ExpressionAttributeNames", {}).items() if value == "state"]
    values = fields.get("ExpressionAttributeValues", {})
    for name in names:
        if match := re.search(rf"{re.escape(name)}\s*=\s*(:\w+)", fields.get("UpdateExpression", "")):
            return values.get(match[1], {}).get("S", "")
    return ""


def _checkpoint_set(fields: dict) -> str:
    """What a DynamoDB UpdateItem does to the item's `checkpoint` (see AwsRequest.sets_checkpoint)."""
    expression = fields.get("UpdateExpression", "")
    removed = re.search(r"\bREMOVE\b(.*?)(?:\b(?:SET|ADD|DELETE)\b|$)", expression)
    for name, value in fields.get("ExpressionAttributeNames", {}).items():
        if value != "checkpoint":
            continue
        if match := re.search(rf"{re.escape(name)}\s*=\s*(:\w+)", expression):
            return json.dumps(fields.get("ExpressionAttributeValues", {}).get(match[1], {}), sort_keys=True)
        if removed and re.search(rf"{re.escape(name)}\b", removed[1]):
            return "-"
    return ""


def _deleted(request: AwsRequest, entry: dict) -> tuple[str, ...]:
    if request.service != "sqs" or request.operation != "DeleteMessage":
        return ()
    body = _body(entry)
    handle = _json(body).get("ReceiptHandle") or parse_qs(body.decode("utf-8", "replace")).get("ReceiptHandle", [""])[0]
    return (handle,) if handle else ()


def _parse(entry: dict) -> AwsRequest:
    headers = {key.lower(): value for key, value in entry["headers"].items()}
    body = _body(entry)
    match = _SERVICE.search(headers.get("authorization", ""))
    service = match[1] if match else "unsigned"
    target = headers.get("x-amz-target", "")
    if target:  # JSON protocols (DynamoDB, SQS): the operation is in a header
        operation = target.rpartition(".")[2]
        fields = _json(body)
        resource = fields.get("TableName") or fields.get("QueueUrl") or ""
        return AwsRequest(service, operation, resource)
    form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
    if "Action" in form:  # query protocols (SNS, and SQS's older one)
        resource = form.get("TopicArn") or form.get("QueueUrl") or ""
        events = tuple(_TASK_EVENT.findall(_decoded(form.get("Message", ""))))
        return AwsRequest(service, form["Action"], resource, events)
    if service == "s3":
        return AwsRequest(service, *_s3_operation(entry["method"], entry["url"]))
    return AwsRequest(service, entry["method"], "")


def categorise(served: list[AwsRequest], names: StackNames) -> Counter[tuple[str, str, str]]:
    """Counts by (category, service, operation); see the module docstring for the categories."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for request in served:
        counts[(category(request, names), request.service, request.operation)] += 1
    return counts


def _message(request: AwsRequest, entry: dict) -> str:
    """An SQS send's message body ("" for any other request)."""
    if request.service != "sqs" or request.operation != "SendMessage":
        return ""
    body = _body(entry)
    fields = _json(body)
    if "MessageBody" in fields:
        return fields["MessageBody"]
    return parse_qs(body.decode("utf-8", "replace")).get("MessageBody", [""])[0]


def category(request: AwsRequest, names: StackNames) -> str:
    if request.service == "dynamodb" and request.resource == names.table:
        return "background" if request.operation == "Query" else "job"
    if request.service == "s3" and request.resource == names.bucket:
        return "job"
    if request.service == "sqs" and request.resource == names.queue_url:
        return "job"
    if request.service == "sns" and names.control_prefix in request.resource:
        return "events"
    if request.service == "sqs" and names.control_prefix in request.resource:
        return "events"
    return "background"


def _s3_operation(method: str, url: str) -> tuple[str, str]:
    path = unquote(urlsplit(url).path).lstrip("/")
    bucket, _, key = path.partition("/")
    kind = "Object" if key else "Bucket"
    verb = {"GET": "Get", "PUT": "Put", "HEAD": "Head", "DELETE": "Delete", "POST": "Post"}.get(method, method)
    if not key and method == "GET":
        return "ListObjects", bucket
    return f"{verb}{kind}", bucket


def _body(entry: dict) -> bytes:
    raw = entry.get("body") or ""
    return base64.b64decode(raw) if entry.get("body_encoded") else raw.encode()


def _json(body: bytes) -> dict:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _decoded(message: str) -> str:
    """An SNS message as text: kombu publishes a JSON envelope whose body may be base64."""
    try:
        envelope = json.loads(message)
    except ValueError:
        return message
    body = envelope.get("body", "") if isinstance(envelope, dict) else ""
    try:
        return message + base64.b64decode(body).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return message
