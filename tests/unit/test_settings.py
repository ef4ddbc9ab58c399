"""Unit tests for storage.settings.Settings.from_env: local defaults, production strictness, ranges."""

from __future__ import annotations

import dataclasses

import pytest

from storage.errors import ConfigError
from storage.settings import LOCAL_ENDPOINT, Settings

PROD_NAMES = {
    "JOBS_TABLE_NAME": "ghost-engine-jobs-prod",
    "ARTIFACTS_BUCKET": "ghost-engine-artifacts-prod",
    "QUEUE_NAME": "ghost-engine-jobs-prod",
    "DEAD_LETTER_QUEUE_NAME": "ghost-engine-jobs-dlq-prod",
}
PROD = {"ENV": "prod", **PROD_NAMES}


def config_error(environ: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ)
    return info.value


# --- local defaults ------------------------------------------------------------------


def test_local_defaults():
    """An empty environment is ENV=local with local names, the emulator endpoint and its broker URL."""
    settings = Settings.from_env({})
    assert settings.env == "local"
    assert settings.jobs_table_name == "ghost-engine-jobs-local"
    assert settings.artifacts_bucket == "ghost-engine-artifacts-local"
    assert settings.queue_name == "ghost-engine-jobs-local"
    assert settings.dead_letter_queue_name == "ghost-engine-jobs-dlq-local"
    assert settings.aws_endpoint_url == LOCAL_ENDPOINT == "http://127.0.0.1:4566"
    assert settings.broker_url == "sqs://test:test@127.0.0.1:4566"
    assert settings.region == "us-east-1"
    assert settings.fault_drills is False
    assert settings.demo_mode is False
    # Short: the worker keeps what it holds invisible, so a step may outlast it (tasks/sqs_visibility.py).
    assert (settings.visibility_timeout_seconds, settings.step_time_limit_seconds) == (15, 120)
    assert settings.hold_limit_seconds == 3 * 120 + 30
    assert 60 <= settings.presign_ttl_seconds <= 3600
    assert settings.internal_token is None and settings.sqs_queue_url is None


def test_from_env_reads_only_the_given_mapping(monkeypatch):
    """A given mapping is the whole environment: os.environ does not leak in."""
    monkeypatch.setenv("JOBS_TABLE_NAME", "from-os-environ")
    assert Settings.from_env({}).jobs_table_name == "ghost-engine-jobs-local"


def test_settings_are_frozen():
    """Settings cannot be changed after parsing."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings.from_env({}).env = "prod"  # type: ignore[misc]


def test_broker_url_quotes_credentials():
    """Emulator credentials with URL-special characters are percent-encoded in the broker URL."""
    settings = Settings.from_env({"AWS_ACCESS_KEY_ID": "a/b", "AWS_SECRET_ACCESS_KEY": "c@d:e"})
    assert settings.broker_url == "sqs://a%2Fb:c%40d%3Ae@127.0.0.1:4566"


def test_region_falls_back_to_aws_default_region():
    """AWS_REGION wins; AWS_DEFAULT_REGION is the fallback."""
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert Settings.from_env({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-west-2"}).region == "us-west-2"


def test_log_level_is_upper_cased():
    """LOG_LEVEL=debug is DEBUG."""
    assert Settings.from_env({"LOG_LEVEL": "debug"}).log_level == "DEBUG"


# --- production ------------------------------------------------------------------------


def test_prod_with_all_names():
    """ENV=prod with every name: those names, the real AWS endpoint (none) and the default SQS broker."""
    settings = Settings.from_env(PROD)
    assert settings.env == "prod"
    assert settings.jobs_table_name == PROD["JOBS_TABLE_NAME"]
    assert settings.artifacts_bucket == PROD["ARTIFACTS_BUCKET"]
    assert settings.aws_endpoint_url is None
    assert settings.broker_url == "sqs://"


@pytest.mark.parametrize("missing", sorted(PROD_NAMES))
@pytest.mark.parametrize("env", ["prod", "staging"])
def test_outside_local_every_name_is_required(env, missing):
    """Outside ENV=local a missing name is a ConfigError naming that variable (never a local default)."""
    environ = {"ENV": env, **PROD_NAMES}
    del environ[missing]
    error = config_error(environ)
    assert missing in error.message
    assert error.details == {"setting": missing}


def test_prod_with_no_names_fails():
    """ENV=prod alone does not start."""
    error = config_error({"ENV": "prod"})
    assert error.details["setting"] in PROD_NAMES


def test_empty_bucket_is_demo_mode():
    """ARTIFACTS_BUCKET="" means no bucket: demo mode, artifacts inlined."""
    settings = Settings.from_env({"ARTIFACTS_BUCKET": ""})
    assert settings.artifacts_bucket is None and settings.demo_mode is True


def test_empty_endpoint_means_real_aws():
    """AWS_ENDPOINT_URL="" locally means no endpoint override and a plain sqs:// broker."""
    settings = Settings.from_env({"AWS_ENDPOINT_URL": ""})
    assert settings.aws_endpoint_url is None and settings.broker_url == "sqs://"


# --- ranges and coercion ---------------------------------------------------------------


@pytest.mark.parametrize("value", ["59", "3601", "0", "-1"])
def test_presign_ttl_out_of_range(value):
    """PRESIGN_TTL_SECONDS outside 60..3600 is refused, naming the variable."""
    error = config_error({"PRESIGN_TTL_SECONDS": value})
    assert "PRESIGN_TTL_SECONDS" in error.message and error.details == {"setting": "PRESIGN_TTL_SECONDS"}


@pytest.mark.parametrize("value", [60, 3600])
def test_presign_ttl_bounds_accepted(value):
    """60 and 3600 are the inclusive bounds."""
    assert Settings.from_env({"PRESIGN_TTL_SECONDS": str(value)}).presign_ttl_seconds == value


@pytest.mark.parametrize(("visibility", "step_limit"), [("30", "120"), ("5", "3600"), ("32370", "3600")])
def test_a_step_may_outlast_the_visibility_timeout(visibility, step_limit):
    """The worker extends what it holds, so the step limit is no longer bound by the visibility timeout."""
    environ = {"VISIBILITY_TIMEOUT_SECONDS": visibility, "STEP_TIME_LIMIT_SECONDS": step_limit}
    settings = Settings.from_env({**environ, "STALL_AFTER_SECONDS": "86400"})
    assert (settings.visibility_timeout_seconds, settings.step_time_limit_seconds) == (int(visibility), int(step_limit))
    assert settings.hold_limit_seconds == 3 * int(step_limit) + 30


@pytest.mark.parametrize(("visibility", "step_limit"), [("32371", "3600"), ("43200", "2")])
def test_the_hold_limit_and_the_visibility_timeout_must_fit_sqss_12_hours(visibility, step_limit):
    """SQS keeps a message in flight 12 hours at most: the last extension must still be accepted."""
    error = config_error({"VISIBILITY_TIMEOUT_SECONDS": visibility, "STEP_TIME_LIMIT_SECONDS": step_limit})
    assert "VISIBILITY_TIMEOUT_SECONDS" in error.message and "hold limit" in error.message


@pytest.mark.parametrize("visibility", ["4", "0"])
def test_a_visibility_timeout_under_5_seconds_is_refused(visibility):
    """The worker extends every third of the timeout: under 5 s that leaves too little for a call."""
    assert config_error({"VISIBILITY_TIMEOUT_SECONDS": visibility}).details == {"setting": "VISIBILITY_TIMEOUT_SECONDS"}


@pytest.mark.parametrize("flag", ["1", "true", "yes", "on", "TRUE"])
def test_fault_drills_cannot_be_enabled_in_prod(flag):
    """FAULT_DRILLS on with ENV=prod is refused."""
    error = config_error({**PROD, "FAULT_DRILLS": flag})
    assert "FAULT_DRILLS" in error.message


def test_fault_drills_allowed_outside_prod():
    """FAULT_DRILLS works locally and in staging; off in prod is fine."""
    assert Settings.from_env({"FAULT_DRILLS": "1"}).fault_drills is True
    assert Settings.from_env({"ENV": "staging", **PROD_NAMES, "FAULT_DRILLS": "on"}).fault_drills is True
    assert Settings.from_env({**PROD, "FAULT_DRILLS": "0"}).fault_drills is False


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("JOB_TTL_DAYS", "abc"),
        ("JOB_TTL_DAYS", "1.5"),
        ("JOB_TTL_DAYS", ""),
        ("PRESIGN_TTL_SECONDS", "15m"),
        ("VISIBILITY_TIMEOUT_SECONDS", "lots"),
        ("AWS_MAX_ATTEMPTS", "two"),
        ("AWS_TIMEOUT_SECONDS", "fast"),
        ("FAULT_DRILLS", "maybe"),
        ("API_THREADS", "abc"),
    ],
)
def test_bad_value_is_config_error_naming_the_variable(var, value):
    """A value that does not parse is a ConfigError naming the variable, not a bare ValueError."""
    error = config_error({var: value})
    assert var in error.message and error.details == {"setting": var}


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("JOB_TTL_DAYS", "0"),
        ("JOB_TTL_DAYS", "366"),
        ("AWS_MAX_ATTEMPTS", "11"),
        ("INLINE_ARTIFACT_MAX_BYTES", "10"),
        ("API_THREADS", "0"),
        ("API_THREADS", "257"),
    ],
)
def test_other_ranges_are_checked(var, value):
    """Other numeric settings are range checked too."""
    assert config_error({var: value}).details == {"setting": var}


def test_local_against_the_emulator_supplies_its_dummy_credentials():
    """A plain shell (no AWS variables) reaches the local emulator: ENV=local lends the emulator's credentials."""
    assert Settings.from_env({}).aws_credentials == ("test", "test")
    assert Settings.from_env({"AWS_ENDPOINT_URL": "http://localhost:4600"}).aws_credentials == ("test", "test")
    given = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert Settings.from_env(given).aws_credentials == ("k", "s")


@pytest.mark.parametrize(
    "environ",
    [
        {"AWS_ENDPOINT_URL": "https://dynamodb.example.com"},  # an emulator somewhere else: its own credentials
        {"AWS_ENDPOINT_URL": ""},  # real AWS from a laptop: the credential chain
    ],
)
def test_no_dummy_credentials_away_from_a_local_emulator(environ):
    assert Settings.from_env(environ).aws_credentials is None


def test_no_dummy_credentials_outside_env_local():
    names = {
        "JOBS_TABLE_NAME": "jobs",
        "ARTIFACTS_BUCKET": "bucket",
        "QUEUE_NAME": "q",
        "DEAD_LETTER_QUEUE_NAME": "d",
    }
    settings = Settings.from_env({"ENV": "prod", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566", **names})
    assert settings.aws_credentials is None


def test_credentials_never_appear_in_the_settings_repr():
    settings = Settings.from_env({"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"})
    assert settings.aws_credentials == ("AKIDEXAMPLE", "wJalrXUtnFEMI")
    assert "AKIDEXAMPLE" not in repr(settings) and "wJalrXUtnFEMI" not in repr(settings)


@pytest.mark.parametrize(("threads", "pool"), [(None, 10), ("1", 10), ("10", 10), ("24", 24), ("256", 256)])
def test_aws_clients_keep_a_connection_for_each_api_thread(threads, pool):
    """An API process's request threads share its AWS clients: each keeps as many connections
    (botocore's 10 at least), so a burst answered by every thread opens none to throw away."""
    settings = Settings.from_env({} if threads is None else {"API_THREADS": threads})
    assert settings.api_threads == (8 if threads is None else int(threads))
    assert settings.aws_pool_connections == pool


@pytest.mark.parametrize("endpoint", ["notaurl", "127.0.0.1:4566", "ftp://127.0.0.1:4566", "http://", "http://a b"])
def test_an_endpoint_botocore_would_refuse_is_a_config_error(endpoint):
    """Refused here, in one line naming it, not by botocore with a traceback from its first client."""
    error = config_error({"AWS_ENDPOINT_URL": endpoint})
    assert error.details == {"setting": "AWS_ENDPOINT_URL"} and endpoint in error.message


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:4566", "https://dynamodb.eu-west-1.amazonaws.com", "http://[::1]:4566"]
)
def test_endpoints_botocore_takes_are_taken(endpoint):
    assert Settings.from_env({"AWS_ENDPOINT_URL": endpoint}).aws_endpoint_url == endpoint


@pytest.mark.parametrize("table", ["ab", "a b", "jobs!", "x" * 256])
def test_a_table_name_dynamodb_would_refuse_is_a_config_error(table):
    """The emulator takes such names; AWS answers them with a validation error that reads as an outage."""
    assert config_error({"JOBS_TABLE_NAME": table}).details == {"setting": "JOBS_TABLE_NAME"}


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("QUEUE_NAME", "bad name!"),
        ("QUEUE_NAME", "x" * 81),
        ("DEAD_LETTER_QUEUE_NAME", "dlq.fifo"),
        ("ARTIFACTS_BUCKET", "Upper"),
        ("ARTIFACTS_BUCKET", "ab"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_LEVEL", ""),
    ],
)
def test_names_and_levels_the_services_would_refuse_later_are_config_errors(var, value):
    """SQS refused such a queue name with a traceback from provisioning, gunicorn such a level with
    ValueError: Unknown level; both now stop at the settings, naming the variable."""
    assert config_error({var: value}).details == {"setting": var}


def test_empty_optional_names_take_their_defaults():
    """An empty METRICS_NAMESPACE or AWS_REGION (an unset variable in a template) is the default, not ''."""
    settings = Settings.from_env({"METRICS_NAMESPACE": "", "AWS_REGION": "", "LOG_LEVEL": " debug "})
    assert (settings.metrics_namespace, settings.region, settings.log_level) == ("GhostEngine", "us-east-1", "DEBUG")
