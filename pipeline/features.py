"""Keyword features of a prompt: what its words ask of the level.

Matching is on case-folded words, with a trailing 's' also tried ("hallways" -> "hallway").
A count before "room(s)" or "chamber(s)" ("5 rooms", "five rooms") is a room-count hint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

CORRIDOR_WORDS = frozenset({"hallway", "hall", "corridor", "passage", "tunnel", "maze", "labyrinth"})
DARK_WORDS = frozenset(
    {"spooky", "dark", "haunted", "creepy", "scary", "eerie", "ghost", "ghostly", "gloomy", "shadow"}
)
LARGE_WORDS = frozenset({"big", "huge", "large", "vast", "giant", "massive", "sprawling", "enormous"})
SMALL_WORDS = frozenset({"small", "tiny", "little", "cramped", "cozy", "narrow"})
BOSS_WORDS = frozenset({"boss", "lair", "throne"})
TREASURE_WORDS = frozenset({"treasure", "loot", "gold", "vault", "armory", "armoury"})
KEY_WORDS = frozenset({"key", "keycard", "locked", "lock", "gate", "puzzle"})
BRIGHT_WORDS = frozenset({"bright", "lit", "sunny", "sunlit", "shining", "glowing", "neon"})
DENSE_WORDS = frozenset({"infested", "crowded", "swarming", "horde", "overrun", "dangerous", "deadly"})
SPARSE_WORDS = frozenset({"empty", "quiet", "abandoned", "deserted", "calm", "peaceful"})
_KEYWORDS = (
    CORRIDOR_WORDS
    | DARK_WORDS
    | LARGE_WORDS
    | SMALL_WORDS
    | BOSS_WORDS
    | TREASURE_WORDS
    | KEY_WORDS
    | BRIGHT_WORDS
    | DENSE_WORDS
    | SPARSE_WORDS
)

ROOM_NOUNS = frozenset({"room", "rooms", "chamber", "chambers"})
NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
MAX_ROOM_HINT = 999

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Features:
    """What a prompt's words ask for."""

    corridor_heavy: bool
    dark: bool
    size: str  # "small", "medium" or "large"
    boss: bool
    treasure: bool
    room_hint: int | None
    keywords: tuple[str, ...]
    keys: bool = False
    bright: bool = False
    density: str = "normal"  # "sparse", "normal" or "dense"

    def to_data(self) -> dict[str, Any]:
        """Return the features as plain JSON data."""
        return {
            "corridorHeavy": self.corridor_heavy,
            "dark": self.dark,
            "bright": self.bright,
            "size": self.size,
            "density": self.density,
            "boss": self.boss,
            "treasure": self.treasure,
            "keys": self.keys,
            "roomHint": self.room_hint,
            "keywords": list(self.keywords),
        }


def extract_features(prompt: str) -> Features:
    """Read keyword features from a prompt; any text is accepted and unknown words are ignored."""
    words = _WORD.findall(prompt.casefold())
    vocabulary = set(words) | {word[:-1] for word in words if word.endswith("s")}
    large, small = bool(vocabulary & LARGE_WORDS), bool(vocabulary & SMALL_WORDS)
    size = "large" if large and not small else "small" if small and not large else "medium"
    dense, sparse = bool(vocabulary & DENSE_WORDS), bool(vocabulary & SPARSE_WORDS)
    dark, bright = bool(vocabulary & DARK_WORDS), bool(vocabulary & BRIGHT_WORDS)
    return Features(
        corridor_heavy=bool(vocabulary & CORRIDOR_WORDS),
        dark=dark and not bright,
        size=size,
        boss=bool(vocabulary & BOSS_WORDS),
        treasure=bool(vocabulary & TREASURE_WORDS),
        room_hint=_room_hint(words),
        keywords=tuple(sorted(vocabulary & _KEYWORDS)),
        keys=bool(vocabulary & KEY_WORDS),
        bright=bright and not dark,
        density="dense" if dense and not sparse else "sparse" if sparse and not dense else "normal",
    )


def _room_hint(words: list[str]) -> int | None:
    for count, noun in pairwise(words):
        if noun not in ROOM_NOUNS:
            continue
        if count.isascii() and count.isdigit():
            # Long digit runs would hit int()'s size limit, and any such number is clamped anyway.
            return int(count) if len(count) <= 3 else MAX_ROOM_HINT
        if count in NUMBER_WORDS:
            return NUMBER_WORDS[count]
    return None
