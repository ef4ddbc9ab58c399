"""The Terraform check's emulator answers a delete of a missing scaling policy or scalable target as
AWS does (ObjectNotFoundException, which the AWS provider takes as deleted), not as moto does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SHIM = Path(__file__).resolve().parents[1] / "deploy"

PROBE = """
import sys
sys.path.insert(0, {shim!r})
import emulator_shim
from moto.applicationautoscaling.models import ApplicationAutoscalingBackend
from moto.core.exceptions import JsonRESTError

def errors(backend):
    out = []
    for call in (
        lambda: backend.delete_scaling_policy("p", "ecs", "service/c/s", "ecs:service:DesiredCount"),
        lambda: backend.deregister_scalable_target("ecs", "service/c/s", "ecs:service:DesiredCount"),
    ):
        try:
            call()
        except JsonRESTError as exc:
            out.append(exc.error_type)
    return out

print(errors(ApplicationAutoscalingBackend("us-east-1", "123456789012")))
emulator_shim.answer_missing_as_aws_does()
print(errors(ApplicationAutoscalingBackend("us-east-1", "123456789012")))
"""


def test_a_delete_of_a_missing_scaling_policy_or_target_is_object_not_found():
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(shim=str(SHIM))], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = result.stdout.splitlines()
    assert before == "['ValidationException', 'ValidationException']"  # moto's own answer
    assert after == "['ObjectNotFoundException', 'ObjectNotFoundException']"
