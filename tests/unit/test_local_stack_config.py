"""`make run`'s settings: every one checked before anything starts, a bad one named, no traceback."""

from __future__ import annotations

import pytest

import local_stack  # scripts/ is on the path (tests/conftest.py)
from local_stack import StackConfig
from storage.errors import ConfigError


def test_the_defaults_and_overrides():
    assert StackConfig.from_env({}) == StackConfig() == StackConfig.from_env({"FLOWER_BASIC_AUTH": "a:b,c:d:e"})
    config = StackConfig.from_env({"API_PORT": "8100", "WORKER_CONCURRENCY": "4", "LOCAL_STACK_DIR": "other"})
    assert (config.api_port, config.worker_concurrency, config.state_dir) == (8100, 4, local_stack.ROOT / "other")


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("API_PORT", "abc", "API_PORT is not valid"),
        ("EMULATOR_PORT", "99999", "EMULATOR_PORT must be between 1 and 65535, got 99999"),
        ("FLOWER_PORT", "0", "FLOWER_PORT must be between 1 and 65535"),
        ("API_WORKERS", "0", "API_WORKERS must be between 1 and 64, got 0"),
        ("WORKER_CONCURRENCY", "-1", "WORKER_CONCURRENCY must be between 1 and 64"),
        ("FLOWER_PORT", "4566", "FLOWER_PORT must differ from EMULATOR_PORT, both 4566"),
        ("API_PORT", "5555", "FLOWER_PORT must differ from API_PORT, both 5555"),
        ("FLOWER_BASIC_AUTH", "nocolon", "FLOWER_BASIC_AUTH is user:password"),
        ("FLOWER_BASIC_AUTH", "ops:", "FLOWER_BASIC_AUTH is user:password"),
        ("FLOWER_BASIC_AUTH", "a:b,:c", "FLOWER_BASIC_AUTH is user:password"),
        ("LOCAL_STACK_DIR", "", "LOCAL_STACK_DIR must name a directory of its own, not the checkout: got ''"),
        ("LOCAL_STACK_DIR", "./", "LOCAL_STACK_DIR must name a directory of its own, not the checkout"),
    ],
)
def test_a_bad_setting_is_named(var, value, says):
    with pytest.raises(ConfigError) as info:
        StackConfig.from_env({var: value})
    assert says in info.value.message


@pytest.mark.parametrize(
    ("var", "value"),
    [("API_PORT", "abc"), ("AWS_MAX_ATTEMPTS", "abc"), ("API_THREADS", "999"), ("LOCAL_STACK_DIR", "")],
)
def test_make_run_stops_before_starting_anything_when_a_setting_is_bad(monkeypatch, capsys, var, value):
    """The stack's own settings and the services' alike: exit 2, one line naming the setting, and
    nothing started (the services' used to fail in the emulator's provisioning, with a traceback)."""
    monkeypatch.setenv(var, value)
    monkeypatch.setattr(local_stack.Stack, "start", lambda self: pytest.fail("started"))
    assert local_stack.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"local stack not started: {var} ") and err.count("\n") == 1
