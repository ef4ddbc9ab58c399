"""What `make run` prints for an operator's second terminal: the exports of *this* stack."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import pytest

from local_stack import Stack, StackConfig, banner  # scripts/ is on the path (tests/conftest.py)


@pytest.fixture
def stack(monkeypatch) -> Stack:
    for name in (
        "JOBS_TABLE_NAME",
        "ARTIFACTS_BUCKET",
        "QUEUE_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "CONTROL_PREFIX",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTERNAL_TOKEN", "tok'en $x")
    return Stack(StackConfig(emulator_port=4700, api_port=8200, flower_port=5700))


def exported(lines: list[str]) -> dict[str, str]:
    """The variables a bash that runs ``lines`` ends up with."""
    script = "\n".join([*lines, "env -0"])
    out = subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_the_exports_point_a_shell_at_this_stack_on_its_own_ports(stack):
    env = exported(stack.operator_exports())
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4700"
    assert env["GHOST_API_URL"] == "http://127.0.0.1:8200"
    assert env["INTERNAL_TOKEN"] == "tok'en $x"  # quoted for the shell, whatever the token
    assert env["AWS_REGION"] == "us-east-1"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    assert "JOBS_TABLE_NAME" not in env  # the defaults follow from ENV=local


def test_names_given_to_make_run_are_passed_on(monkeypatch):
    monkeypatch.setenv("JOBS_TABLE_NAME", "my-jobs")
    monkeypatch.setenv("QUEUE_NAME", "my-queue")
    env = exported(Stack(StackConfig()).operator_exports())
    assert env["JOBS_TABLE_NAME"] == "my-jobs" and env["QUEUE_NAME"] == "my-queue"


def test_the_region_falls_back_to_aws_default_region_as_the_services_resolve_it(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    stack = Stack(StackConfig())
    assert stack.settings.region == "eu-west-1"
    assert exported(stack.operator_exports())["AWS_REGION"] == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "us-west-2")  # AWS_REGION wins
    assert Stack(StackConfig()).settings.region == "us-west-2"


def test_the_banner_prints_the_exports_under_operators(stack):
    text = banner(stack)
    section = text[text.index("Operators, in another terminal") :]
    for line in stack.operator_exports():
        assert f"  {line}\n" in section
    assert "make run-clean" in text


def test_the_banner_prints_the_console_url_of_this_stack(stack, client):
    """The README sends people to `make run`'s banner for the console's address."""
    found = re.search(r"^  Console +(\S+)$", banner(stack), re.MULTILINE)
    assert found, "no Console line in the banner"
    url = urlsplit(found.group(1))
    assert f"{url.scheme}://{url.netloc}" == stack.api_url == "http://127.0.0.1:8200"
    page = client.get(url.path)  # the path printed is the console's form, served by the API
    assert page.status_code == 200 and 'id="submit-form"' in page.get_data(as_text=True)


def test_the_banner_says_when_fault_drills_are_on(monkeypatch):
    monkeypatch.delenv("FAULT_DRILLS", raising=False)
    assert "Fault drills" not in banner(Stack(StackConfig()))
    monkeypatch.setenv("FAULT_DRILLS", "1")
    monkeypatch.setenv("FAULT_DRILL_SLOW_SECONDS", "40")
    line = next(line for line in banner(Stack(StackConfig())).splitlines() if "Fault drills" in line)
    assert "X-Fault-Drill: fail:<step>" in line and "sleep 40 s" in line
