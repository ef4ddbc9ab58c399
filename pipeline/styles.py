"""Level styles: how each style builds its level, and the vocabulary it fills it with.

Four constructions (pipeline/layouts/) differ in how rooms are made and joined:

    doom     lattice  rooms and halls in a jittered lattice of blocks, joined by corridors with
                      space between them; many loops
    dungeon  attach   rooms (rectangles and crosses) attached one by one to the level, through a
                      door or a corridor stub; dead space between; few loops (Brogue's attach-rooms)
    cave     cave     cellular-automaton caverns, the largest kept, cut into chambers
    maze     maze     rooms in a labyrinth of one-cell passages with extra connectors (rooms and mazes)

`scifi` is the lattice with bigger blocks and smaller rooms (long straight corridors, bright);
`haunted` is attach-rooms with small, tightly packed rooms and few corridors (dark).

Glyphs follow roguelike conventions (see minimap.py): enemies are lower-case letters other than
r, b and y (those are the keys); items are punctuation; the boss is '&'.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Style:
    """One style's construction, defaults and vocabulary."""

    name: str
    construction: str  # "lattice", "attach", "cave" or "maze"
    rooms: int  # rooms (corridors not counted) of a medium level
    corridors: int  # percent: how readily the construction makes corridors
    loop_percent: int  # connections beyond a spanning tree, as a percent of the room count
    enemies_per_10_rooms: int
    items_per_10_rooms: int
    light: int  # 0..255, Doom's sector light scale
    enemies: tuple[tuple[str, str], ...]  # (type, glyph)
    items: tuple[tuple[str, str], ...]  # (type, glyph)
    boss: tuple[str, str]
    palette: Mapping[str, str]  # colours of minimap.png
    shape: Mapping[str, int] = field(default_factory=dict)  # construction parameters (see its module)
    variant_of: str | None = None


def _palette(background: str, wall: str, floor: str, corridor: str, door: str) -> Mapping[str, str]:
    return MappingProxyType(
        {"background": background, "wall": wall, "floor": floor, "corridor": corridor, "door": door}
    )


_STYLES = (
    Style(
        name="doom",
        construction="lattice",
        rooms=10,
        corridors=50,
        loop_percent=30,
        enemies_per_10_rooms=12,
        items_per_10_rooms=8,
        light=176,
        enemies=(("imp", "i"), ("zombieman", "z"), ("demon", "d"), ("cacodemon", "c")),
        items=(("medkit", "!"), ("stimpack", ";"), ("shells", "*"), ("armor", "[")),
        boss=("cyberdemon", "&"),
        palette=_palette("#141414", "#6e6e6e", "#8a7660", "#5c5650", "#b5822f"),
        shape=MappingProxyType({"block_min": 10, "block_max": 16, "fill_min": 55}),
    ),
    Style(
        name="dungeon",
        construction="attach",
        rooms=12,
        corridors=50,
        loop_percent=10,
        enemies_per_10_rooms=10,
        items_per_10_rooms=10,
        light=128,
        enemies=(("goblin", "g"), ("skeleton", "s"), ("orc", "o"), ("giant_rat", "q")),
        items=(("potion", "!"), ("gold", "$"), ("scroll", "?"), ("dagger", ")")),
        boss=("dragon", "&"),
        palette=_palette("#100c08", "#6b5a48", "#a39077", "#7d6f5e", "#9c5b2e"),
        shape=MappingProxyType({"room_min": 3, "room_max": 9, "cross": 20, "stub_min": 2, "stub_max": 7, "space": 90}),
    ),
    Style(
        name="scifi",
        construction="lattice",
        rooms=9,
        corridors=70,
        loop_percent=20,
        enemies_per_10_rooms=8,
        items_per_10_rooms=6,
        light=208,
        enemies=(("drone", "d"), ("alien", "a"), ("turret", "t"), ("cyborg", "c")),
        items=(("medpack", "!"), ("energy_cell", "*"), ("shield", "["), ("datapad", "?")),
        boss=("hive_queen", "&"),
        palette=_palette("#070b12", "#4a6078", "#9fb4c8", "#6f8296", "#3fb8c9"),
        shape=MappingProxyType({"block_min": 12, "block_max": 18, "fill_min": 35}),
        variant_of="doom",
    ),
    Style(
        name="haunted",
        construction="attach",
        rooms=11,
        corridors=20,
        loop_percent=25,
        enemies_per_10_rooms=6,
        items_per_10_rooms=5,
        light=96,
        enemies=(("ghost", "g"), ("poltergeist", "p"), ("wraith", "w"), ("banshee", "e")),
        items=(("candle", "("), ("holy_water", "!"), ("relic", '"'), ("lantern", "*")),
        boss=("lich", "&"),
        palette=_palette("#0b0710", "#4d3f5c", "#7a6a86", "#5a4d66", "#8a6d3b"),
        shape=MappingProxyType({"room_min": 3, "room_max": 7, "cross": 35, "stub_min": 1, "stub_max": 4, "space": 60}),
        variant_of="dungeon",
    ),
    Style(
        name="cave",
        construction="cave",
        rooms=10,
        corridors=0,
        loop_percent=20,
        enemies_per_10_rooms=10,
        items_per_10_rooms=6,
        light=112,
        enemies=(("bat", "v"), ("spider", "s"), ("troll", "t"), ("slime", "j")),
        items=(("torch", "("), ("potion", "!"), ("gold", "$"), ("mushroom", "%")),
        boss=("wyrm", "&"),
        palette=_palette("#0d0b09", "#5b4a3a", "#8f7a62", "#8f7a62", "#a0662f"),
        shape=MappingProxyType({"wall": 45, "cells": 30}),
    ),
    Style(
        name="maze",
        construction="maze",
        rooms=8,
        corridors=60,
        loop_percent=25,
        enemies_per_10_rooms=10,
        items_per_10_rooms=8,
        light=144,
        enemies=(("kobold", "k"), ("mummy", "m"), ("ant", "a"), ("grid_bug", "x")),
        items=(("potion", "!"), ("scroll", "?"), ("gold", "$"), ("ration", "%")),
        boss=("minotaur", "&"),
        palette=_palette("#0a0a0a", "#4f5d4a", "#9aa58c", "#7b8670", "#9a7a3c"),
        shape=MappingProxyType({"room_min": 3, "room_max": 9, "segment": 16, "prune": 8, "drop": 60}),
    ),
)

_BY_NAME = {style.name: style for style in _STYLES}

STYLES: tuple[str, ...] = tuple(_BY_NAME)
DEFAULT_STYLE: str = "doom"


def style_named(name: str) -> Style:
    """Return the style called name; the request has already checked that it is one of STYLES."""
    return _BY_NAME[name]
