import json

import pytest

import pipeline
from storage.bootstrap import Services
from storage.settings import Settings
from tasks import checkpoints, doom_nodes
from tests.fakes import FakeArtifactStore, FakeJobStore


@pytest.fixture(autouse=True)
def _no_node_builder(monkeypatch):
    """The unit tier runs as where zdbsp is missing (jobs skip map.wad), whatever this machine has.

    The real node builder belongs to the integration tier (tests/integration/test_doom_play.py).
    """
    monkeypatch.setattr(doom_nodes, "node_builder", lambda: None)


@pytest.fixture
def in_s3(monkeypatch) -> None:
    """Every checkpoint too big for its step's record, as a big level's are: each goes to S3."""
    monkeypatch.setattr(checkpoints, "RECORD_CHECKPOINT_MAX_BYTES", 0)


@pytest.fixture(scope="session")
def reference_checkpoints() -> dict[str, bytes]:
    """Each step's checkpoint bytes for the tests' default request, from the pure pipeline."""
    data: dict = {"prompt": "a spooky hallway", "seed": 123, "style": "doom"}
    out = {}
    for step in pipeline.STEPS[:-1]:
        output = pipeline.run_step(step, data)
        out[step] = checkpoints.encode_checkpoint(step, output)
        data = json.loads(pipeline.encode_json(output.data))
    return out


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"ENV": "local", "FAULT_DRILLS": "1"})


@pytest.fixture
def services(settings) -> Services:
    return Services(settings=settings, jobs=FakeJobStore(), artifacts=FakeArtifactStore())


@pytest.fixture
def sent() -> list:
    """The (jobId, requestId) pairs the API enqueued."""
    return []


@pytest.fixture
def app(services, sent):
    from api import create_app

    return create_app(services, enqueue=lambda job_id, request_id, **_: sent.append((job_id, request_id)))


@pytest.fixture
def client(app):
    return app.test_client()
