"""What Doom content the scene's words become: thing numbers (doomednum) and each style's textures.

Enemy and item types are the generator's vocabulary, which grows with its styles: known names map
to the Doom thing they resemble, and any other name to one of a few common things chosen by a
stable hash of the name, so a new word never breaks a map and always gives the same thing.
Items are pickups only: a solid decoration could block the way the level was generated with.
Keys are keycards where the style is technological and skull keys where it is not; a locked
door opens for either.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

PLAYER_START = 1
KEYS = {"red_key": 13, "blue_key": 5, "yellow_key": 6}
SKULL_KEYS = {"red_key": 38, "blue_key": 40, "yellow_key": 39}
KEYCARD_STYLES = frozenset({"doom", "scifi"})

ENEMIES = {
    "zombieman": 3004,
    "shotgun_guy": 9,
    "chaingunner": 65,
    "imp": 3001,
    "demon": 3002,
    "spectre": 58,
    "lost_soul": 3006,
    "cacodemon": 3005,
    "hell_knight": 69,
    "baron": 3003,
    "revenant": 66,
    "mancubus": 67,
    "arachnotron": 68,
    "pain_elemental": 71,
    "archvile": 64,
    "cyberdemon": 16,
    "spider_mastermind": 7,
    # The other styles' vocabulary, as their Doom look-alikes.
    "goblin": 3001,
    "orc": 3002,
    "skeleton": 66,
    "giant_rat": 3002,
    "dragon": 3003,
    "ghost": 58,
    "poltergeist": 3006,
    "wraith": 58,
    "banshee": 3005,
    "lich": 64,
    "drone": 3006,
    "alien": 3001,
    "turret": 65,
    "cyborg": 9,
    "hive_queen": 7,
    "bat": 3006,
    "spider": 68,
    "troll": 69,
    "slime": 3002,
    "wyrm": 16,
    "kobold": 3001,
    "mummy": 3004,
    "ant": 3002,
    "grid_bug": 3006,
    "minotaur": 3003,
}
ITEMS = {
    "medkit": 2012,
    "stimpack": 2011,
    "health_bonus": 2014,
    "armor_bonus": 2015,
    "armor": 2018,
    "green_armor": 2018,
    "blue_armor": 2019,
    "clip": 2007,
    "bullets": 2048,
    "shells": 2008,
    "rockets": 2010,
    "cells": 2047,
    "backpack": 8,
    "shotgun": 2001,
    "super_shotgun": 82,
    "chaingun": 2002,
    "rocket_launcher": 2003,
    "plasma_rifle": 2004,
    "chainsaw": 2005,
    "bfg": 2006,
    "berserk": 2023,
    "soulsphere": 2013,
    "megasphere": 83,
    # The other styles' vocabulary.
    "potion": 2011,
    "gold": 2014,
    "scroll": 2015,
    "medpack": 2012,
    "energy_cell": 2047,
    "shield": 2018,
    "holy_water": 2014,
    "candle": 2015,
    "lantern": 2045,
    "dagger": 2005,
    "datapad": 2026,
    "relic": 2013,
    "torch": 2045,
    "mushroom": 2011,
    "ration": 2012,
}
_FALLBACK_ENEMIES = (3004, 9, 3001, 3002)
_FALLBACK_ITEMS = (2011, 2014, 2015, 2008)


def thing_type(kind: str, type_: str, style: str = "doom") -> int | None:
    """The doomednum of a scene entity in a style; None for the exit, which is a switch, not a thing."""
    if kind == "start":
        return PLAYER_START
    if kind == "enemy":
        return ENEMIES.get(type_) or _stable_pick(type_, _FALLBACK_ENEMIES)
    if kind in ("key", "item"):
        keys = KEYS if style in KEYCARD_STYLES else SKULL_KEYS
        # A key of no known colour opens nothing: it is left as an ordinary pickup.
        return keys.get(type_) or ITEMS.get(type_) or _stable_pick(type_, _FALLBACK_ITEMS)
    return None


def _stable_pick(name: str, choices: tuple[int, ...]) -> int:
    # crc32, not hash(): Python salts str hashes per process.
    return choices[zlib.crc32(name.encode("utf-8")) % len(choices)]


@dataclass(frozen=True)
class Textures:
    """The wall, floor, ceiling and exit switch textures of one style (all in freedoom2.wad)."""

    wall: str
    floor: str
    ceiling: str
    switch: str


DOOR_FACE, DOOR_FACE_WIDTH = "BIGDOOR2", 128
DOOR_TRACK = "DOORTRAK"
LOCK_TRACKS = {"red": "DOORRED", "blue": "DOORBLU", "yellow": "DOORYEL"}
DOOR_FLOOR = "FLAT20"
STYLE_TEXTURES = {
    "doom": Textures("STARTAN2", "FLOOR4_8", "CEIL3_5", "SW1STRTN"),
    "dungeon": Textures("STONE2", "FLOOR7_1", "CEIL5_1", "SW1STON1"),
    "cave": Textures("ROCK2", "RROCK16", "RROCK03", "SW1ROCK"),
    "maze": Textures("BRICK7", "FLOOR0_1", "CEIL1_1", "SW1BRIK"),
    "scifi": Textures("TEKWALL4", "FLAT14", "CEIL4_1", "SW1TEK"),
    "haunted": Textures("WOOD1", "FLOOR7_2", "CEIL1_1", "SW1WOOD"),
}


def style_textures(style: str) -> Textures:
    """The textures of a style; an unknown style looks like doom."""
    return STYLE_TEXTURES.get(style, STYLE_TEXTURES["doom"])
