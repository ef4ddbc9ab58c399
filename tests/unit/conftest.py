import pytest

from storage.bootstrap import Services
from storage.settings import Settings
from tests.fakes import FakeArtifactStore, FakeJobStore


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

    return create_app(services, enqueue=lambda job_id, request_id: sent.append((job_id, request_id)))


@pytest.fixture
def client(app):
    return app.test_client()
