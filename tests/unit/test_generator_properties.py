"""Property test: hundreds of (seed, style, prompt) combinations, every scene/1 invariant holding.

Hypothesis draws the requests (derandomized, so CI sees the same ones every run); each level is
checked by tests/scene_rules.py — written from the contract, not from the generator — and by the
pipeline's own validator, and generated twice to show the bytes repeat.
"""

from __future__ import annotations

import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline import STEPS, STYLES, encode_json, run_step, scene_problems
from pipeline.features import (
    BOSS_WORDS,
    BRIGHT_WORDS,
    CORRIDOR_WORDS,
    DARK_WORDS,
    DENSE_WORDS,
    KEY_WORDS,
    LARGE_WORDS,
    SMALL_WORDS,
    SPARSE_WORDS,
    TREASURE_WORDS,
)
from pipeline.picture import render_png
from tests.scene_rules import check_minimap, check_scene

WORDS = sorted(
    BOSS_WORDS
    | BRIGHT_WORDS
    | CORRIDOR_WORDS
    | DARK_WORDS
    | DENSE_WORDS
    | KEY_WORDS
    | LARGE_WORDS
    | SMALL_WORDS
    | SPARSE_WORDS
    | TREASURE_WORDS
    | {"a", "the", "with", "and", "crypt", "base", "of", "rooms", "three", "12"}
)
prompts = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
    st.tuples(st.integers(0, 70), st.sampled_from(["rooms", "chambers"])).map(lambda p: f"a level of {p[0]} {p[1]}"),
    st.text(min_size=1, max_size=40).filter(
        lambda text: text.strip() and not any("\ud800" <= c <= "\udfff" for c in text)
    ),
)
requests = st.fixed_dictionaries(
    {"prompt": prompts, "seed": st.integers(0, 2**31 - 1), "style": st.sampled_from(STYLES)},
    optional={"rooms": st.integers(3, 60)},
)


def generate(request: dict) -> dict:
    data = request
    for name in STEPS:
        data = json.loads(encode_json(run_step(name, data).data))
    return data


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(requests)
def test_every_generated_level_keeps_every_invariant(request):
    data = generate(request)
    scene, minimap = data["sceneGraph"], data["asciiMinimap"]
    check_scene(scene)
    check_minimap(scene, minimap)
    assert scene_problems(scene) == []
    assert scene["validation"]["attempts"] <= 3
    assert (scene["prompt"], scene["seed"], scene["style"]) == (
        request["prompt"].strip(),
        request["seed"],
        request["style"],
    )
    if "rooms" in request:
        assert scene["params"]["rooms"] == request["rooms"]
    assert sum(room["kind"] != "corridor" for room in scene["rooms"]) == scene["params"]["rooms"]
    png = render_png(scene)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.width % scene["grid"]["width"] == 0 and image.height % scene["grid"]["height"] == 0
    # Same request, same bytes.
    assert encode_json(generate(request)) == encode_json(data)
