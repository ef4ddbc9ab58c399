"""Unit tests for minimap.png (pipeline/picture.py): what is drawn where, in which colour."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from pipeline import STEPS, encode_json, run_step
from pipeline.picture import COLORS, MAX_CELL, MAX_SIDE, MIN_CELL, render_png
from tests.scene_rules import floor_of


def scene_for(request: dict) -> dict:
    data = request
    for name in STEPS:
        data = json.loads(encode_json(run_step(name, data).data))
    return data["sceneGraph"]


@pytest.fixture(scope="module")
def scene() -> dict:
    return scene_for({"prompt": "a locked boss lair with keys and 14 rooms", "seed": 4, "style": "doom"})


@pytest.fixture(scope="module")
def image(scene) -> Image.Image:
    return Image.open(io.BytesIO(render_png(scene))).convert("RGB")


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def pixel(image: Image.Image, cell: list | tuple, part: str = "centre") -> tuple[int, int, int]:
    x, y = cell
    offset = MAX_CELL // 2 if part == "centre" else 0  # the corner of a cell shows what is under a mark
    return image.getpixel((x * MAX_CELL + offset, y * MAX_CELL + offset))


def test_a_png_of_the_grid_at_the_largest_cell_size(scene, image):
    assert render_png(scene)[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.size == (scene["grid"]["width"] * MAX_CELL, scene["grid"]["height"] * MAX_CELL)


def test_rooms_corridors_walls_and_rock_in_the_style_palette(scene, image):
    palette = {name: hex_rgb(value) for name, value in scene["theme"]["palette"].items()}
    marked = {tuple(entity["at"]) for entity in scene["entities"]}
    for room in scene["rooms"]:
        expected = palette["corridor" if room["kind"] == "corridor" else "floor"]
        assert all(pixel(image, cell) == expected for cell in floor_of(room) if cell not in marked), room["id"]
    x, y = floor_of(scene["rooms"][0])[0]
    assert pixel(image, (x - 1, y - 1)) == palette["wall"]  # a corner of the wall around the first room
    assert pixel(image, (0, 0)) in (palette["background"], palette["wall"])


def test_doors_and_locks_in_their_colours(scene, image):
    palette = {name: hex_rgb(value) for name, value in scene["theme"]["palette"].items()}
    assert scene["locks"]
    for door in scene["doors"]:
        expected = COLORS[door["lock"]] if door["lock"] else palette["door"]
        assert pixel(image, door["at"]) == expected, door


def test_entities_are_marked(scene, image):
    for entity in scene["entities"]:
        kind = entity["kind"]
        if kind == "key":
            expected = COLORS[entity["type"].removesuffix("_key")]
        elif kind == "enemy":
            expected = COLORS["boss"] if "boss" in entity["tags"] else COLORS["enemy"]
        else:
            expected = COLORS[kind if kind in ("start", "exit") else "item"]
        assert pixel(image, entity["at"]) == expected, entity
    assert any("boss" in entity["tags"] for entity in scene["entities"])


def test_big_levels_get_smaller_cells_and_stay_bounded():
    scene = scene_for({"prompt": "a level", "seed": 2, "style": "maze", "rooms": 300})
    width, height = scene["grid"]["width"], scene["grid"]["height"]
    with Image.open(io.BytesIO(render_png(scene))) as image:
        cell = image.width // width
        assert MIN_CELL <= cell < MAX_CELL and image.size == (width * cell, height * cell)
        assert max(image.size) <= max(MAX_SIDE, MIN_CELL * max(width, height))


def test_same_scene_same_bytes(scene):
    assert render_png(scene) == render_png(json.loads(encode_json(scene)))
