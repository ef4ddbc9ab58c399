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


# --- the credentials make run generates -------------------------------------------------------


def test_generated_credentials_are_kept_for_the_next_run_and_readable_by_the_owner_only(tmp_path):
    config = StackConfig(state_dir=tmp_path / "state")
    first = local_stack.kept_credentials(config, {})
    assert set(first) == {"INTERNAL_TOKEN", "FLOWER_BASIC_AUTH"} and first["FLOWER_BASIC_AUTH"].startswith("ops:")
    assert len(first["INTERNAL_TOKEN"]) >= 32  # 24 random bytes
    assert config.credentials_file.stat().st_mode & 0o777 == 0o600
    assert local_stack.kept_credentials(config, {}) == first  # the next `make run`: the same ones
    other = local_stack.kept_credentials(StackConfig(state_dir=tmp_path / "other"), {})
    assert other["INTERNAL_TOKEN"] != first["INTERNAL_TOKEN"]  # random, not a constant


def test_a_credential_set_in_the_environment_wins_and_the_kept_one_stays_for_later(tmp_path):
    config = StackConfig(state_dir=tmp_path)
    kept = local_stack.kept_credentials(config, {})
    assert local_stack.kept_credentials(config, {"INTERNAL_TOKEN": "mine"}) == {
        "FLOWER_BASIC_AUTH": kept["FLOWER_BASIC_AUTH"]
    }
    assert local_stack.kept_credentials(config, {"INTERNAL_TOKEN": "mine", "FLOWER_BASIC_AUTH": "a:b"}) == {}
    assert local_stack.kept_credentials(config, {}) == kept


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"INTERNAL_TOKEN": 5}', '{"INTERNAL_TOKEN": ""}'])
def test_an_unreadable_credentials_file_is_replaced_with_new_ones(tmp_path, text):
    config = StackConfig(state_dir=tmp_path)
    config.credentials_file.write_text(text)
    new = local_stack.kept_credentials(config, {})
    assert new["INTERNAL_TOKEN"] and new["FLOWER_BASIC_AUTH"].startswith("ops:")
    assert local_stack.kept_credentials(config, {}) == new
    assert config.credentials_file.stat().st_mode & 0o777 == 0o600


def test_make_run_starts_with_the_kept_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_STACK_DIR", str(tmp_path))
    for name in ("INTERNAL_TOKEN", "FLOWER_BASIC_AUTH"):
        monkeypatch.delenv(name, raising=False)
    kept = local_stack.kept_credentials(StackConfig.from_env())
    started: list = []

    def start(self):
        started.append({name: self.env[name] for name in kept})
        raise RuntimeError("stop here")

    monkeypatch.setattr(local_stack.Stack, "start", start)
    monkeypatch.setattr(local_stack.Stack, "stop", lambda self: None)
    monkeypatch.setattr(local_stack.signal, "signal", lambda *args: None)  # this process's handlers stay
    assert local_stack.main([]) == 1
    assert started == [kept]


def test_credentials_that_cannot_be_kept_are_generated_all_the_same(tmp_path):
    (tmp_path / "file").write_text("")
    config = StackConfig(state_dir=tmp_path / "file" / "state")  # under a file: no directory there
    new = local_stack.kept_credentials(config, {})
    assert new["INTERNAL_TOKEN"] and new["FLOWER_BASIC_AUTH"].startswith("ops:")
