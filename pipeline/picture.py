"""minimap.png: a picture of the level, drawn with Pillow.

Rooms and corridors in the style's palette (pipeline/styles.py), walls around them, doors, locked
doors in their lock's colour, and marks for the entities: the start a green disc, the exit a
white square, keys diamonds in their colour, enemies red dots (the boss a bigger magenta one),
items small cyan squares. A cell is MAX_CELL pixels, less for big levels so that the picture stays
within MAX_SIDE pixels (never less than MIN_CELL). Pure: the same scene gives the same pixels, and
the same bytes with the same Pillow and zlib.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from PIL import Image, ImageDraw

from . import raster

MAX_CELL, MIN_CELL, MAX_SIDE = 12, 2, 1200
COLORS = {
    "red": (224, 48, 48),
    "blue": (48, 104, 255),
    "yellow": (240, 208, 32),
    "start": (58, 209, 58),
    "exit": (250, 250, 250),
    "enemy": (222, 40, 40),
    "boss": (255, 64, 255),
    "item": (64, 200, 224),
    "outline": (0, 0, 0),
}
DEFAULT_PALETTE = {
    "background": "#101010",
    "wall": "#6e6e6e",
    "floor": "#8a7660",
    "corridor": "#5c5650",
    "door": "#b5822f",
}
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
# Palette indices: the raster's cell classes (0-7: rock ... yellow locked door) come first, so a
# lock's colour is its key's; then the marks' colours.
_MARKS = ("red", "blue", "yellow", "start", "exit", "enemy", "boss", "item", "outline")
INDEX = {name: len(DEFAULT_PALETTE) + number for number, name in enumerate(_MARKS)}


def render_png(scene: Mapping[str, Any]) -> bytes:
    """The PNG bytes of a valid scene/1 graph."""
    width, height = scene["grid"]["width"], scene["grid"]["height"]
    cell = max(MIN_CELL, min(MAX_CELL, MAX_SIDE // max(width, height)))
    # A palette image (one byte a pixel) until it is saved: a third of the work of RGB, and a
    # smaller file. The marks are drawn with palette indices too.
    image = Image.frombytes("P", (width, height), bytes(raster.rasterize(scene)))
    image = image.resize((width * cell, height * cell), Image.Resampling.NEAREST)
    image.putpalette(_palette(scene.get("theme", {}).get("palette", {})))
    draw = ImageDraw.Draw(image)
    for entity in scene["entities"]:
        _mark(draw, entity, cell)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _palette(theme: Mapping[str, Any]) -> list[int]:
    colors = {
        name: theme[name] if isinstance(theme, Mapping) and _HEX.fullmatch(str(theme.get(name, ""))) else default
        for name, default in DEFAULT_PALETTE.items()
    }
    order = [
        _rgb(colors["background"]),
        _rgb(colors["wall"]),
        _rgb(colors["floor"]),
        _rgb(colors["corridor"]),
        _rgb(colors["door"]),
        *(COLORS[name] for name in _MARKS),
    ]
    return [channel for color in order for channel in color]


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _mark(draw: ImageDraw.ImageDraw, entity: Mapping[str, Any], cell: int) -> None:
    x, y = entity["at"]
    left, top = x * cell, y * cell
    kind = entity["kind"]
    if kind == "key":
        color = INDEX.get(entity["type"].removesuffix("_key"), INDEX["yellow"])
    elif kind == "enemy":
        color = INDEX["boss"] if "boss" in entity.get("tags", ()) else INDEX["enemy"]
    else:
        color = INDEX.get(kind, INDEX["item"])
    outline = INDEX["outline"]
    if cell < 5:
        # Too small to draw a shape: the whole cell in the entity's colour.
        draw.rectangle((left, top, left + cell - 1, top + cell - 1), fill=color)
        return
    inset = cell // 5
    box = (left + inset, top + inset, left + cell - 1 - inset, top + cell - 1 - inset)
    middle_x, middle_y = left + (cell - 1) / 2, top + (cell - 1) / 2
    if kind == "start":
        draw.ellipse(box, fill=color, outline=outline)
    elif kind == "exit":
        draw.rectangle(box, fill=color, outline=outline)
    elif kind == "key":
        half = (cell - 1) / 2 - inset / 2
        diamond = [
            (middle_x, middle_y - half),
            (middle_x + half, middle_y),
            (middle_x, middle_y + half),
            (middle_x - half, middle_y),
        ]
        draw.polygon(diamond, fill=color, outline=outline)
    elif kind == "enemy":
        shrink = 0 if "boss" in entity.get("tags", ()) else cell // 8
        draw.ellipse((box[0] + shrink, box[1] + shrink, box[2] - shrink, box[3] - shrink), fill=color)
    else:
        quarter = cell // 4
        draw.rectangle((left + quarter, top + quarter, left + cell - 1 - quarter, top + cell - 1 - quarter), fill=color)
