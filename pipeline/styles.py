"""Level styles: the defaults and the vocabulary each style brings to a level.

A style sets how many rooms a level has and how much floor each gets, how often splits carve
corridors, how many extra doors make loops, how many enemies and items appear, how bright it is,
which enemies, items, boss and exit it uses, and their minimap glyphs. Enemy glyphs are lowercase
letters and item glyphs uppercase letters; 'S', 'E' and 'B' are reserved for start, exit and boss.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """One style's defaults and vocabulary."""

    name: str
    rooms: int  # room count of a medium-sized level
    cells_per_room: int  # grid area budgeted per room, before size words adjust it
    corridor_chance: int  # percent of splits that carve a corridor strip
    loop_percent: int  # doors beyond a spanning tree, as a percent of the room count
    enemies_per_10_rooms: int
    items_per_10_rooms: int
    lighting: int  # percent
    enemies: tuple[tuple[str, str], ...]  # (kind, glyph)
    items: tuple[tuple[str, str], ...]  # (kind, glyph)
    boss: str
    exit: str


_STYLES = (
    Style(
        name="doom",
        rooms=10,
        cells_per_room=110,
        corridor_chance=15,
        loop_percent=30,
        enemies_per_10_rooms=12,
        items_per_10_rooms=8,
        lighting=70,
        enemies=(("imp", "i"), ("zombieman", "z"), ("demon", "d"), ("cacodemon", "c")),
        items=(("medkit", "M"), ("shells", "A"), ("armor", "R"), ("keycard", "K")),
        boss="cyberdemon",
        exit="exit_switch",
    ),
    Style(
        name="dungeon",
        rooms=12,
        cells_per_room=80,
        corridor_chance=25,
        loop_percent=10,
        enemies_per_10_rooms=10,
        items_per_10_rooms=10,
        lighting=45,
        enemies=(("goblin", "g"), ("skeleton", "s"), ("orc", "o"), ("giant_rat", "r")),
        items=(("potion", "P"), ("gold", "G"), ("key", "K"), ("scroll", "Q")),
        boss="dragon",
        exit="stairs_down",
    ),
    Style(
        name="scifi",
        rooms=9,
        cells_per_room=140,
        corridor_chance=35,
        loop_percent=20,
        enemies_per_10_rooms=8,
        items_per_10_rooms=6,
        lighting=85,
        enemies=(("drone", "d"), ("alien", "a"), ("turret", "t"), ("cyborg", "c")),
        items=(("medpack", "M"), ("energy_cell", "C"), ("keycard", "K"), ("shield", "H")),
        boss="hive_queen",
        exit="teleporter",
    ),
    Style(
        name="haunted",
        rooms=11,
        cells_per_room=100,
        corridor_chance=20,
        loop_percent=25,
        enemies_per_10_rooms=6,
        items_per_10_rooms=5,
        lighting=30,
        enemies=(("ghost", "g"), ("poltergeist", "p"), ("wraith", "w"), ("banshee", "b")),
        items=(("candle", "C"), ("holy_water", "H"), ("key", "K"), ("lantern", "L")),
        boss="lich",
        exit="portal",
    ),
)

_BY_NAME = {style.name: style for style in _STYLES}

STYLES: tuple[str, ...] = tuple(_BY_NAME)
DEFAULT_STYLE: str = "doom"


def style_named(name: str) -> Style:
    """Return the style called name; the request has already checked that it is one of STYLES."""
    return _BY_NAME[name]
