"""deploy/terraform, run rather than read: fmt, validate, plan-level tests, an apply to a fresh emulator,
the app booted from the task definitions Terraform registered, the dashboard and alarms checked
against what the code emits, and a destroy. `make deploy-check` runs this module alone; `make test`
runs it with everything else. The tests run in file order and share one apply.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from local_stack import untraced, wait_http
from tests.deploy.conftest import report, scratch_copy
from tests.deploy.monitoring_contract import alarm_references, dashboard_references, unknown_references
from tests.deploy.terraform_cli import ROOT, SOURCE, Terraform, render_override
from tests.integration.conftest import free_port

ENV = "check"
REGION = "us-east-1"
# Applied with parallelism 20: the emulator answers at once, so more parallel calls only help.
PARALLELISM = "-parallelism=20"


# --- static checks and plan-level tests ------------------------------------------------------


@pytest.fixture(scope="module")
def initialised(terraform_tools, tmp_path_factory) -> Terraform:
    """A scratch copy of deploy/terraform, initialised with no backend from the provider mirror."""
    terraform = scratch_copy(terraform_tools, tmp_path_factory.mktemp("tf") / "static")
    _, elapsed = terraform.check("init", "-backend=false", "-input=false")
    report(f"terraform init -backend=false from the mirror: {elapsed:.1f} s")
    return terraform


def test_terraform_fmt_and_validate(initialised):
    out, _ = initialised.check("fmt", "-check", "-recursive", "-list=true", cwd=SOURCE)
    assert out == "", f"terraform fmt would change: {out}"
    out, _ = initialised.check("validate", "-json")
    assert json.loads(out)["valid"] is True
    report("terraform fmt -check -recursive and validate: clean")


def test_plan_level_terraform_tests_pass_with_a_mocked_provider(initialised):
    # Terraform 1.11's mock providers cannot serve ephemeral resources: secrets.tf, and only it,
    # is swapped for fixed values (tests/deploy/plan_secrets.tf). The apply below keeps it.
    workdir = initialised.workdir
    (workdir / "secrets.tf").unlink()
    shutil.copy(Path(__file__).with_name("plan_secrets.tf"), workdir / "plan_secrets.tf")
    out, elapsed = initialised.check("test", "-no-color")
    passed = re.search(r"Success! (\d+) passed, 0 failed", out)
    assert passed, out
    runs = re.findall(r'run "(\w+)"\.\.\. pass', out)
    assert {
        "env_ending_with_a_hyphen_is_refused",
        "api_memory_not_paired_with_its_cpu_is_refused",
        "https_without_a_domain_is_refused",
        "flower_exposed_without_a_certificate_is_refused",
    } <= set(runs)
    report(f"terraform test (mocked provider): {passed[1]} runs passed in {elapsed:.1f} s")


# --- the apply -------------------------------------------------------------------------------


@dataclass
class Applied:
    """The configuration applied to a fresh emulator."""

    terraform: Terraform
    endpoint: str
    recording: Path
    outputs: dict
    destroyed: bool = False
    clients: dict = field(default_factory=dict)

    def client(self, service: str):
        if service not in self.clients:
            self.clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="terraform",
                aws_secret_access_key="test",
            )
        return self.clients[service]

    def output(self, name: str):
        return self.outputs[name]["value"]


def _start_emulator(port: int, log: Path, recording: Path) -> subprocess.Popen:
    env = {**untraced(os.environ), "MOTO_RECORDER_FILEPATH": str(recording)}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("emulator_shim.py")), "--port", str(port)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        cwd=ROOT,
    )
    wait_http(f"http://127.0.0.1:{port}/moto-api/", 30, proc)
    return proc


def _network(ec2) -> dict:
    """The VPC and subnets Terraform expects to exist (deploy/terraform takes them as inputs)."""
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{n}.0/24", AvailabilityZone=f"{REGION}{'ab'[n % 2]}")["Subnet"][
            "SubnetId"
        ]
        for n in range(4)
    ]
    return {"vpc_id": vpc, "public_subnet_ids": subnets[:2], "private_subnet_ids": subnets[2:]}


APPLY = ("apply", "-auto-approve", "-input=false", "-no-color", PARALLELISM)
RULE_TYPES = ("aws_vpc_security_group_egress_rule", "aws_vpc_security_group_ingress_rule")


def _apply(applied: Applied) -> tuple[str, float]:
    """terraform apply; once more if a rule it made was refused as a duplicate of itself.

    Seen twice under a loaded CI run: the provider's AuthorizeSecurityGroupEgress was applied by
    the emulator (logged 200), its answer lost, the SDK sent it again, and the emulator answered
    InvalidPermission.Duplicate (an ambiguous write, as AWS's can be). The rule then exists but
    Terraform's state lacks it, so a plain second apply is refused the same way: the rules no
    state knows of are taken back first (_revoke_unknown_rules).
    """
    result, elapsed = applied.terraform.run(*APPLY, timeout=900)
    if result.returncode == 0:
        return result.stdout, elapsed
    assert "InvalidPermission.Duplicate" in result.stdout + result.stderr, (
        f"terraform apply failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    taken_back = _revoke_unknown_rules(applied)
    report(f"terraform apply: {len(taken_back)} rule(s) made by a lost answer taken back, applied again")
    out, again = applied.terraform.check(*APPLY, timeout=900)
    return out, elapsed + again


def _revoke_unknown_rules(applied: Applied) -> list[str]:
    """Revoke the security-group rules of the state's groups that the state does not hold; their ids."""
    state = json.loads(applied.terraform.check("show", "-json")[0])
    resources = state.get("values", {}).get("root_module", {}).get("resources", [])
    known = {r["values"]["security_group_rule_id"] for r in resources if r["type"] in RULE_TYPES}
    groups = [r["values"]["id"] for r in resources if r["type"] == "aws_security_group"]
    ec2 = applied.client("ec2")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": groups}])["SecurityGroupRules"]
    unknown = [rule for rule in rules if rule["SecurityGroupRuleId"] not in known]
    for rule in unknown:
        revoke = ec2.revoke_security_group_egress if rule["IsEgress"] else ec2.revoke_security_group_ingress
        revoke(GroupId=rule["GroupId"], SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    return [rule["SecurityGroupRuleId"] for rule in unknown]


@pytest.fixture(scope="module")
def applied(terraform_tools, tmp_path_factory) -> Iterator[Applied]:
    """deploy/terraform applied to a fresh emulator (stopped, with whatever is left, at the end)."""
    base = tmp_path_factory.mktemp("apply")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    recording = base / "recording.jsonl"
    emulator = _start_emulator(port, base / "emulator.log", recording)
    try:
        terraform = scratch_copy(terraform_tools, base / "terraform")
        (terraform.workdir / "emulator_override.tf").write_text(render_override(endpoint))
        applied = Applied(terraform, endpoint, recording, {})
        variables = {
            "env": ENV,
            "aws_region": REGION,
            "image_tag": "deploy-check",
            "deletion_protection": False,
            **_network(applied.client("ec2")),
        }
        (terraform.workdir / "deploy-check.auto.tfvars.json").write_text(json.dumps(variables))
        terraform.check("init", "-input=false")
        out, elapsed = _apply(applied)
        (base / "apply.log").write_text(out)  # which resource took how long: "Creation complete after"
        added = re.search(r"Apply complete! Resources: (\d+) added", out)
        assert added, out[-3000:]
        report(f"terraform apply on the emulator: {added[1]} resources in {elapsed:.0f} s")
        applied.outputs = json.loads(terraform.check("output", "-json")[0])
        yield applied
        if not applied.destroyed:
            _empty_bucket(applied)
            terraform.run("destroy", "-auto-approve", "-input=false", PARALLELISM, timeout=900)
    finally:
        os.killpg(emulator.pid, signal.SIGTERM)
        emulator.wait(15)


def test_terraform_makes_the_names_the_app_is_told(applied):
    assert applied.output("jobs_table_name") == f"ghost-engine-jobs-{ENV}"
    assert applied.output("artifacts_bucket") == f"ghost-engine-artifacts-{ENV}"
    table = applied.client("dynamodb").describe_table(TableName=applied.output("jobs_table_name"))["Table"]
    assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {"GSI1", "GSI2"}
    ttl = applied.client("dynamodb").describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl"
    secrets = applied.client("ssm").get_parameters(
        Names=[applied.output("internal_token_parameter"), applied.output("flower_basic_auth_parameter")],
        WithDecryption=True,
    )["Parameters"]
    assert len(secrets) == 2 and all(len(p["Value"]) >= 32 for p in secrets)
    state = (applied.terraform.workdir / "terraform.tfstate").read_text()
    for parameter in secrets:
        assert parameter["Value"] not in state, f"{parameter['Name']}'s value is in the Terraform state"


# --- booted from its own task definitions ----------------------------------------------------


@dataclass
class Booted:
    api_url: str
    job_id: str
    keys: dict[str, str]  # access key id -> service
    requests: list[dict]
    health: dict[str, subprocess.CompletedProcess]  # service -> its container health check, run


def _task_definition(applied: Applied, service: str) -> dict:
    ecs = applied.client("ecs")
    (described,) = ecs.describe_services(cluster=applied.output("ecs_cluster_name"), services=[service])["services"]
    arn = described["taskDefinition"]
    assert arn == applied.output("ecs_task_definition_arns")[service]
    (container,) = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["containerDefinitions"]
    return container


def _process_env(applied: Applied, container: dict, access_key: str) -> dict[str, str]:
    """Exactly the container's environment and secrets, plus what ECS and the image would add."""
    ssm = applied.client("ssm")
    secrets = {
        secret["name"]: ssm.get_parameter(Name=secret["valueFrom"].split(":parameter", 1)[1], WithDecryption=True)[
            "Parameter"
        ]["Value"]
        for secret in container.get("secrets", [])
    }
    return {
        # The image's PATH (here: this virtualenv's console scripts first) and its ENV.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONUNBUFFERED": "1",
        **{item["name"]: item["value"] for item in container["environment"]},
        **secrets,
        # ECS: the task role's credentials and the region come from the agent. Here: dummy keys,
        # one per service so the emulator's request log tells the processes apart.
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        # The one override: every AWS client (boto3, and kombu through it) goes to the emulator.
        "AWS_ENDPOINT_URL": applied.endpoint,
    }


QUEUE_A_JOB = """
from storage.bootstrap import build_services
from storage.settings import Settings
from tasks.dispatch import submit_job

services = build_services(Settings.from_env())
request = {"prompt": "never sent", "seed": 1, "style": "doom"}
job, _ = submit_job(services.jobs, request, ttl_days=1, enqueue=lambda *a, **k: None)
print("answer:", job.job_id)
"""
SWEEP_A_DAY_LATER = """
from datetime import UTC, datetime, timedelta

from storage.bootstrap import build_services
from storage.settings import Settings
from tasks.sweeper import sweep_stalled

services = build_services(Settings.from_env())
later = datetime.now(UTC) + timedelta(days=1)
print("answer:", *sweep_stalled(services, stall_after_seconds=services.settings.stall_after_seconds, now=later))
"""


def _python(code: str, env: dict[str, str], cwd: Path) -> str:
    """Run ``code`` as a service's process would (its environment, its credentials): what it
    printed after ``answer:`` (its log lines go to the same output)."""
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    answers = [line.removeprefix("answer:").strip() for line in done.stdout.splitlines() if line.startswith("answer:")]
    assert len(answers) == 1, done.stdout + done.stderr
    return answers[0]


def _start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def _moto(applied: Applied, action: str) -> None:
    urllib.request.urlopen(
        urllib.request.Request(f"{applied.endpoint}/moto-api/recorder/{action}", method="POST"), timeout=10
    ).close()


@pytest.fixture(scope="module")
def booted(applied, tmp_path_factory) -> Iterator[Booted]:
    """The API and the worker started from their task definitions; the smoke test run against the API."""
    logs = tmp_path_factory.mktemp("booted")
    keys = {"api": "AKIADEPLOYCHECKAPI00", "worker": "AKIADEPLOYCHECKWRKR0"}
    api = _task_definition(applied, "api")
    worker = _task_definition(applied, "worker")
    port = free_port()
    # The task definition binds 0.0.0.0:8000 (each task has its own network namespace on
    # Fargate); here that port may be taken, so the one change is the bind address.
    command = list(api["command"])
    bind = command.index("--bind") + 1
    assert command[bind] == "0.0.0.0:8000"
    command[bind] = f"127.0.0.1:{port}"
    _moto(applied, "start-recording")
    procs = {
        "worker": _start(worker["command"], _process_env(applied, worker, keys["worker"]), logs / "worker.log", logs),
        "api": _start(command, _process_env(applied, api, keys["api"]), logs / "api.log", logs),
    }
    try:
        api_url = f"http://127.0.0.1:{port}"
        wait_http(f"{api_url}/healthz", 60, procs["api"])
        started = time.monotonic()
        smoke = subprocess.run(
            ["bash", str(ROOT / "scripts" / "smoke-test.sh"), api_url],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "SMOKE_TIMEOUT": "60"},
        )
        assert smoke.returncode == 0, (
            f"{smoke.stdout}\n{smoke.stderr}\nworker log:\n{(logs / 'worker.log').read_text()[-3000:]}"
        )
        job_id = re.search(r"submitted job (\S+)", smoke.stdout)[1]
        took = time.monotonic() - started
        report(f"booted api and worker from their task definitions; smoke test: job {job_id} done in {took:.1f} s")
        # ECS runs a container's health check inside it, with its environment: so here.
        health = {
            name: subprocess.run(
                container["healthCheck"]["command"][1:],
                env=_process_env(applied, container, keys[name]),
                cwd=logs,
                capture_output=True,
                text=True,
                timeout=container["healthCheck"]["timeout"],
            )
            for name, container in (("worker", worker),)
        }
        # The worker's rarer calls, which the smoke test's job does not make: its stall sweep (the
        # state index's Query, a GetItem of each stalled job, its UpdateItem), run with the
        # worker's environment over a job the API's code queued and never sent.
        never_sent = _python(QUEUE_A_JOB, _process_env(applied, api, keys["api"]), logs)
        swept = _python(SWEEP_A_DAY_LATER, _process_env(applied, worker, keys["worker"]), logs)
        assert never_sent in swept.split(), (never_sent, swept)
        report(f"the worker's stall sweep, a day later, failed the job the API queued and never sent: {never_sent}")
        _moto(applied, "stop-recording")
        requests = [json.loads(line) for line in applied.recording.read_text().splitlines()]
        yield Booted(api_url, job_id, {key: service for service, key in keys.items()}, requests, health)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_the_app_booted_from_its_task_definitions_gets_a_job_done(applied, booted):
    item = applied.client("dynamodb").get_item(
        TableName=applied.output("jobs_table_name"), Key={"jobId": {"S": booted.job_id}}, ConsistentRead=True
    )["Item"]
    assert item["state"]["S"] == "done"
    listed = applied.client("s3").list_objects_v2(
        Bucket=applied.output("artifacts_bucket"), Prefix=f"jobs/{booted.job_id}/"
    )
    keys = {entry["Key"].rsplit("/", 1)[-1] for entry in listed.get("Contents", [])}
    assert {"sceneGraph.json", "asciiMinimap.txt", "result.json"} <= keys


def test_the_worker_passes_its_own_container_health_check(booted):
    """The task definition's healthCheck (python -m tasks.liveness) finds the booted worker alive."""
    check = booted.health["worker"]
    assert check.returncode == 0, check.stdout + check.stderr
    assert "healthy" in check.stdout


def _iam_action(entry: dict) -> tuple[str | None, str]:
    """(access key id, IAM action) of one recorded request."""
    headers = {name.lower(): value for name, value in entry["headers"].items()}
    url = urllib.parse.urlsplit(entry["url"])
    query = dict(urllib.parse.parse_qsl(url.query))
    credential = re.search(r"Credential=([^/]+)/\d+/[^/]+/([^/]+)/", headers.get("authorization", ""))
    key, service = (credential[1], credential[2]) if credential else (None, "")
    if "X-Amz-Credential" in query:  # a presigned URL
        key, _, _, service, _ = query["X-Amz-Credential"].split("/")
    if target := headers.get("x-amz-target"):
        return key, f"{service}:{target.rsplit('.', 1)[-1]}"
    body = (
        base64.b64decode(entry["body"]).decode(errors="replace")
        if entry.get("body_encoded")
        else entry.get("body") or ""
    )
    if action := dict(urllib.parse.parse_qsl(body)).get("Action") or query.get("Action"):
        return key, f"{service}:{action}"
    if service == "s3":  # path style: /bucket or /bucket/key
        has_key = len([part for part in url.path.split("/") if part]) > 1
        if not has_key:
            return key, "s3:ListBucket"  # HeadBucket, ListObjects
        return key, {"PUT": "s3:PutObject", "DELETE": "s3:DeleteObject"}.get(entry["method"], "s3:GetObject")
    return key, f"{service}:{entry['method']} {url.path}"


def test_each_process_calls_only_what_its_task_role_grants(applied, booted):
    used: dict[str, set[str]] = {"api": set(), "worker": set()}
    for entry in booted.requests:
        key, action = _iam_action(entry)
        if key in booted.keys:
            used[booted.keys[key]].add(action)
    iam = applied.client("iam")
    for service, actions in used.items():
        document = iam.get_role_policy(RoleName=f"ghost-engine-{ENV}-{service}-task", PolicyName="task")[
            "PolicyDocument"
        ]
        document = json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document
        granted = {
            action
            for statement in document["Statement"]
            if statement["Effect"] == "Allow"
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        }
        assert actions, f"no request from the {service} was recorded"
        assert actions <= granted, (
            f"the {service} called {sorted(actions - granted)}, which its task role does not grant"
        )
        called = ", ".join(sorted(actions))
        report(f"{service} made {len(actions)} kinds of AWS call, all granted to its task role: {called}")
    assert "s3:PutObject" in used["worker"] and "s3:PutObject" not in used["api"]


# --- dashboard and alarms --------------------------------------------------------------------


def test_dashboard_and_alarms_name_only_metrics_the_code_emits(applied):
    body = json.loads(
        applied.client("cloudwatch").get_dashboard(DashboardName=applied.output("dashboard_name"))["DashboardBody"]
    )
    alarms = applied.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"ghost-engine-{ENV}-")["MetricAlarms"]
    names = {alarm["AlarmName"].removeprefix(f"ghost-engine-{ENV}-") for alarm in alarms}
    assert names == {
        "alb-5xx",
        "dlq-not-empty",
        "queue-oldest-message",
        "job-failure-rate",
        "api-running-below-desired",
        "worker-running-below-desired",
        "flower-running-below-desired",
    }
    topic = applied.output("alarms_topic_arn")
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms)
    api = _task_definition(applied, "api")
    namespace = {item["name"]: item["value"] for item in api["environment"]}["METRICS_NAMESPACE"]
    known = {
        "QueueName": {applied.output("queue_name"), applied.output("dlq_name")},
        "ClusterName": {applied.output("ecs_cluster_name")},
        "ServiceName": set(applied.output("ecs_service_names")),
        "LoadBalancer": {
            re.sub(r"^.*:loadbalancer/", "", lb["LoadBalancerArn"])
            for lb in applied.client("elbv2").describe_load_balancers()["LoadBalancers"]
        },
    }
    refs = dashboard_references(body) + alarm_references(alarms)
    assert not unknown_references(refs, namespace, known)
    report(f"dashboard ({len(body['widgets'])} widgets) and {len(alarms)} alarms name only emitted metrics")


# --- destroy ---------------------------------------------------------------------------------


def _empty_bucket(applied: Applied) -> None:
    """The teardown's first step (docs/deploy.md): Terraform does not delete a bucket's objects."""
    s3 = applied.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=applied.output("artifacts_bucket")):
        if keys := [{"Key": entry["Key"]} for entry in page.get("Contents", [])]:
            s3.delete_objects(Bucket=applied.output("artifacts_bucket"), Delete={"Objects": keys})


def test_destroy_removes_everything(applied):
    _empty_bucket(applied)
    out, elapsed = applied.terraform.check(
        "destroy", "-auto-approve", "-input=false", "-no-color", PARALLELISM, timeout=900
    )
    applied.destroyed = True
    destroyed = re.search(r"Destroy complete! Resources: (\d+) destroyed", out)
    assert destroyed, out[-3000:]
    state = json.loads((applied.terraform.workdir / "terraform.tfstate").read_text())
    assert not [r for r in state["resources"] if r["mode"] == "managed" and r["instances"]]
    assert applied.client("dynamodb").list_tables()["TableNames"] == []
    report(f"terraform destroy: {destroyed[1]} resources in {elapsed:.0f} s; emulator stopped")
