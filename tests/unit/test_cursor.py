"""Unit tests for the listing cursor: round trip, and every forged or corrupted cursor is InvalidCursor."""

from __future__ import annotations

import base64
import json
import random
import string
import uuid

import pytest

from api import create_app
from storage.bootstrap import Services
from storage.dynamo_items import decode_cursor, encode_cursor, list_sort_key
from storage.errors import InvalidCursor
from storage.model import JobPage, JobState
from tests.fakes import FakeArtifactStore, FakeJobStore

JOB_ID = "3f0c8a2e-1b4d-4c6e-9f00-123456789abc"
SORT_KEY = f"2026-01-01T00:00:00.000Z#{JOB_ID}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64_json(obj) -> str:
    return b64(json.dumps(obj).encode())


def assert_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


# --- round trip ----------------------------------------------------------------------


def test_round_trip():
    """decode(encode(k, id)) == (k, id)."""
    assert decode_cursor(encode_cursor(SORT_KEY, JOB_ID)) == (SORT_KEY, JOB_ID)


def test_round_trip_many_ids():
    """Round trip holds for many generated ids and times (any padding length)."""
    rng = random.Random(0)
    for _ in range(200):
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        month, day, hour, ms = rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 999)
        sort_key = f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00.{ms:03d}Z#{job_id}"
        assert decode_cursor(encode_cursor(sort_key, job_id)) == (sort_key, job_id)


def test_cursor_is_url_safe_and_unpadded():
    """A cursor travels in a query string as is: URL-safe alphabet, no padding."""
    cursor = encode_cursor(SORT_KEY, JOB_ID)
    assert set(cursor) <= set(string.ascii_letters + string.digits + "-_")
    assert len(cursor) <= 1024  # the API's ListJobsQuery limit


def test_padded_cursor_is_accepted():
    """A cursor with its base64 padding put back still decodes (some clients re-pad)."""
    cursor = encode_cursor(SORT_KEY, JOB_ID)
    assert decode_cursor(cursor + "=" * (-len(cursor) % 4)) == (SORT_KEY, JOB_ID)


# --- forged and corrupted cursors -------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="text"),
        pytest.param("!!!!", id="non-alphabet"),
        pytest.param("a", id="one-char"),
        pytest.param("abcde", id="bad-length"),
        pytest.param("=" * 8, id="only-padding"),
        pytest.param(b64(b"not json"), id="b64-not-json"),
        pytest.param(b64(b"\xff\xfe\x00"), id="b64-not-utf8"),
        pytest.param(b64_json([SORT_KEY, JOB_ID]), id="json-list"),
        pytest.param(b64_json("k"), id="json-string"),
        pytest.param(b64_json(5), id="json-number"),
        pytest.param(b64_json(None), id="json-null"),
        pytest.param(b64_json({}), id="json-empty"),
        pytest.param(b64_json({"k": SORT_KEY}), id="missing-id"),
        pytest.param(b64_json({"id": JOB_ID}), id="missing-k"),
        pytest.param(b64_json({"k": SORT_KEY, "id": str(uuid.uuid4())}), id="mismatched-id"),
        pytest.param(b64_json({"k": 5, "id": JOB_ID}), id="k-number"),
        pytest.param(b64_json({"k": SORT_KEY, "id": 5}), id="id-number"),
        pytest.param(b64_json({"k": [SORT_KEY], "id": JOB_ID}), id="k-list"),
        pytest.param(b64_json({"k": {"a": 1}, "id": [JOB_ID]}), id="id-list"),
        pytest.param(b64_json({"k": None, "id": None}), id="nulls"),
        pytest.param(b64_json({"k": JOB_ID, "id": JOB_ID}), id="k-without-time"),
        pytest.param(b64_json({"k": f"yesterday#{JOB_ID}", "id": JOB_ID}), id="k-bad-time"),
        pytest.param(b64_json({"k": SORT_KEY.upper(), "id": JOB_ID.upper()}), id="upper-case"),
        pytest.param(b64_json({"k": f"2026-01-01T00:00:00.000Z#{'a' * 36}", "id": "a" * 36}), id="id-not-uuid"),
        pytest.param(b64_json({"k": SORT_KEY + "x", "id": JOB_ID}), id="k-trailing"),
        pytest.param("x" + encode_cursor(SORT_KEY, JOB_ID), id="prefixed"),
        pytest.param(encode_cursor(SORT_KEY, JOB_ID)[:-3], id="truncated"),
        pytest.param("é" * 12, id="unicode"),
        pytest.param("\ud800abc", id="lone-surrogate"),
        pytest.param("👻" * 4, id="emoji"),
        pytest.param("\x00" * 4, id="nul"),
    ],
)
def test_forged_cursor_is_invalid(cursor):
    """Anything we could not have issued is InvalidCursor."""
    assert_invalid(cursor)


def test_sort_key_with_trailing_newline_is_invalid():
    """'<sort key>\\n' was never issued and must be refused."""
    assert_invalid(b64_json({"k": SORT_KEY + "\n", "id": JOB_ID}))


def test_deeply_nested_json_is_invalid():
    """A cursor decoding to deeply nested JSON is InvalidCursor, not RecursionError."""
    assert_invalid(b64(b"[" * 5000))


def _garbage(rng: random.Random) -> str:
    """One generated bad cursor, of a randomly chosen kind."""
    kind = rng.randrange(6)
    length = rng.randint(0, 80)
    if kind == 0:  # printable ASCII
        return "".join(rng.choice(string.printable) for _ in range(length))
    if kind == 1:  # the cursor alphabet itself
        return "".join(rng.choice(string.ascii_letters + string.digits + "-_=") for _ in range(length))
    if kind == 2:  # base64 of random bytes
        return b64(rng.randbytes(length))
    if kind == 3:  # any code point, surrogates included
        return "".join(chr(rng.randrange(0x110000)) for _ in range(length))
    if kind == 4:  # a real cursor with one character flipped or removed
        cursor = list(encode_cursor(SORT_KEY, JOB_ID))
        i = rng.randrange(len(cursor))
        if rng.random() < 0.5:
            del cursor[i]
        else:
            cursor[i] = rng.choice([c for c in string.ascii_letters + string.digits + "-_" if c != cursor[i]])
        return "".join(cursor)
    # JSON objects of random shapes and values
    values = [None, 0, -1, 1.5, True, "", "k", SORT_KEY, JOB_ID, [], {}, [SORT_KEY], {"k": SORT_KEY}]
    obj = {rng.choice(["k", "id", "K", "x"]): rng.choice(values) for _ in range(rng.randint(0, 3))}
    return b64_json(obj)


def test_generated_garbage_only_ever_raises_invalid_cursor():
    """Thousands of generated bad cursors: each is InvalidCursor or (by chance) a valid pair, never another error."""
    rng = random.Random(0)
    original = encode_cursor(SORT_KEY, JOB_ID)
    accepted = []
    for _ in range(5000):
        cursor = _garbage(rng)
        try:
            sort_key, job_id = decode_cursor(cursor)
        except InvalidCursor:
            continue
        # Base64 decoding ignores stray characters, so a corrupted cursor can only decode to a pair
        # that is itself well formed and consistent.
        assert sort_key.endswith("#" + job_id)
        accepted.append(cursor)
    assert original not in accepted
    assert len(accepted) < 50


# --- through the API -------------------------------------------------------------------


class DecodingJobStore(FakeJobStore):
    """A fake whose listing decodes cursors the way DynamoJobStore does."""

    def list_jobs(self, *, limit: int, cursor: str | None = None, state: JobState | None = None) -> JobPage:
        start = decode_cursor(cursor)[0] if cursor is not None else None
        ordered = sorted(self.jobs.values(), key=list_sort_key, reverse=True)
        ordered = [job for job in ordered if start is None or list_sort_key(job) < start]
        page = ordered[:limit]
        more = len(ordered) > limit
        return JobPage(tuple(page), encode_cursor(list_sort_key(page[-1]), page[-1].job_id) if more else None)


@pytest.fixture
def decoding_client(settings):
    services = Services(settings=settings, jobs=DecodingJobStore(), artifacts=FakeArtifactStore())
    return create_app(services, enqueue=lambda job_id, request_id, **_: None).test_client()


@pytest.mark.parametrize(
    "cursor",
    ["garbage", b64(b"not json"), b64_json({"k": SORT_KEY, "id": str(uuid.uuid4())}), "é", b64(b"[" * 700)],
)
def test_api_garbage_cursor_is_400_invalid_cursor(decoding_client, cursor):
    """GET /jobs with a cursor the store cannot decode is 400 INVALID_CURSOR in the error shape."""
    response = decoding_client.get("/jobs", query_string={"cursor": cursor})
    assert response.status_code == 400
    assert response.get_json() == {
        "error": {"code": "INVALID_CURSOR", "message": "cursor is malformed or was not issued by this API"}
    }


def test_api_cursor_over_1024_chars_is_422(decoding_client):
    """An oversized cursor is refused by validation before it reaches the store."""
    response = decoding_client.get("/jobs", query_string={"cursor": "a" * 1025})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_api_pages_with_real_cursors(decoding_client):
    """Cursors the store issues lead through every job, newest first, once each."""
    ids = [decoding_client.post("/generate-scene", json={"prompt": f"p{i}"}).get_json()["jobId"] for i in range(5)]
    seen, cursor = [], None
    while True:
        body = decoding_client.get(
            "/jobs", query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).get_json()
        seen += [job["jobId"] for job in body["jobs"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
        assert decode_cursor(cursor)[1] == seen[-1]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
