"""render_minimap: draw the scene graph as a roguelike ASCII map, with a legend under it.

The map is `height` lines of exactly `width` characters, then a blank line and the legend, which
names every glyph the map uses:

    (blank) solid rock     #  wall (rock next to floor)     .  floor     +  door
    R B Y  door locked red, blue, yellow                    r b y  red, blue, yellow key
    @  start     >  exit     &  boss
    enemies are lower-case letters, items punctuation, by style (pipeline/styles.py)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import raster
from .contract import PipelineError, StepOutput, plural, require_field, require_mapping
from .styles import STYLES, Style, style_named
from .validate import scene_problems

WALL, FLOOR, DOOR, START, EXIT, BOSS = "#", ".", "+", "@", ">", "&"
LOCKED = {"red": "R", "blue": "B", "yellow": "Y"}
KEYS = {"red": "r", "blue": "b", "yellow": "y"}
LEGEND_COLUMN = 16  # characters per legend entry, at least
LEGEND_WIDTH = 80  # the legend wraps at the map's width, or at this, whichever is wider
_GLYPHS = bytes.maketrans(
    bytes((raster.ROCK, raster.WALL, raster.FLOOR, raster.CORRIDOR, raster.DOOR, *raster.LOCKED.values())),
    (" " + WALL + FLOOR + FLOOR + DOOR + "".join(LOCKED[color] for color in raster.LOCKED)).encode("ascii"),
)


def render_minimap(previous: Mapping[str, Any]) -> StepOutput:
    """Check the scene graph and draw it: {"sceneGraph": {...}, "asciiMinimap": "..."}."""
    scene = require_field(require_mapping(previous, "previous"), "sceneGraph", Mapping, "previous")
    found = scene_problems(scene)
    if found:
        raise PipelineError(f"the scene graph breaks scene/1: {found[0]}")
    minimap = draw(scene)
    grid = scene["grid"]
    legend = minimap.count("\n") - grid["height"] - 1
    summary = f"Drew a {grid['width']}x{grid['height']} minimap with {plural(legend, 'legend line')}"
    return StepOutput({"sceneGraph": dict(scene), "asciiMinimap": minimap}, summary)


def draw(scene: Mapping[str, Any]) -> str:
    """The ASCII minimap of a valid scene/1 graph, legend included."""
    if scene.get("style") not in STYLES:
        raise PipelineError(f"scene.style must be one of {', '.join(STYLES)}")
    style = style_named(scene["style"])
    width, height = scene["grid"]["width"], scene["grid"]["height"]
    chars = raster.rasterize(scene).translate(_GLYPHS)
    glyphs = _glyphs(style)
    used: dict[str, str] = {}
    for entity in scene["entities"]:
        glyph, meaning = _glyph_of(entity, glyphs)
        x, y = entity["at"]
        chars[y * width + x] = ord(glyph)
        used.setdefault(glyph, meaning)
    rows = [chars[row * width : (row + 1) * width].decode("ascii") for row in range(height)]
    return "\n".join(rows) + "\n\n" + _legend(chars, used, max(width, LEGEND_WIDTH))


def _glyphs(style: Style) -> dict[tuple[str, str], str]:
    glyphs = {("enemy", kind): glyph for kind, glyph in style.enemies}
    glyphs |= {("item", kind): glyph for kind, glyph in style.items}
    return glyphs


def _glyph_of(entity: Mapping[str, Any], glyphs: dict[tuple[str, str], str]) -> tuple[str, str]:
    kind, type_ = entity["kind"], entity["type"]
    if kind == "start":
        return START, "start"
    if kind == "exit":
        return EXIT, "exit"
    if kind == "key" and type_.removesuffix("_key") in KEYS:
        color = type_.removesuffix("_key")
        return KEYS[color], f"{color} key"
    if "boss" in entity.get("tags", ()):
        return BOSS, f"{type_.replace('_', ' ')} (boss)"
    glyph = glyphs.get((kind, type_))
    if glyph is None:
        raise PipelineError(f"entity {entity['id']!r} is a {kind} {type_[:40]!r}, which this style lacks")
    return glyph, type_.replace("_", " ")


def _legend(chars: bytearray, used: dict[str, str], width: int) -> str:
    present = set(chars.decode("ascii"))
    entries = [
        (glyph, meaning) for glyph, meaning in ((WALL, "wall"), (FLOOR, "floor"), (DOOR, "door")) if glyph in present
    ]
    entries += [(glyph, f"{color} door") for color, glyph in LOCKED.items() if glyph in present]
    order = [START, EXIT, *KEYS.values(), BOSS]
    entries += [(glyph, used[glyph]) for glyph in order if glyph in used]
    entries += sorted((glyph, meaning) for glyph, meaning in used.items() if glyph not in order)
    texts = [f"{glyph}  {meaning}" for glyph, meaning in entries]
    column = max(LEGEND_COLUMN, *(len(text) + 2 for text in texts))
    per_line = max(1, (width - 8) // column)
    lines = []
    for start in range(0, len(texts), per_line):
        row = "".join(text.ljust(column) for text in texts[start : start + per_line]).rstrip()
        lines.append(("Legend  " if start == 0 else " " * 8) + row)
    return "\n".join(lines) + "\n"
