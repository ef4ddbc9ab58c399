"""Deterministic random streams: the same key gives the same numbers on every machine and Python.

random.Random documents only seed() and random() as reproducible across versions; randrange,
choice and shuffle have changed algorithm before (3.2, 3.12). So the pipeline draws from its own
stream: BLAKE2b of (key, block counter) read as little-endian 64-bit words, integers below n by
rejection sampling, shuffles by Fisher-Yates. Everything here is specified by these few lines.
"""

from __future__ import annotations

import hashlib
import struct
from bisect import bisect_right
from collections.abc import MutableSequence, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_BLOCK = struct.Struct("<8Q")


class Stream:
    """A stream of random integers derived from a key alone."""

    __slots__ = ("_block", "_index", "_key", "_words")

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2b(key, digest_size=32).digest()
        self._block = 0
        self._words: tuple[int, ...] = ()
        self._index = 8

    def _refill(self) -> None:
        digest = hashlib.blake2b(self._block.to_bytes(8, "little"), key=self._key).digest()
        self._words = _BLOCK.unpack(digest)
        self._block += 1
        self._index = 0

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if n <= 1:
            if n == 1:
                return 0
            raise ValueError(f"below() needs n >= 1, got {n}")
        # The top bits of a word, as few as n needs, rejected when n or more: no bias.
        shift = 64 - (n - 1).bit_length()
        while True:
            if self._index == 8:
                self._refill()
            value = self._words[self._index] >> shift
            self._index += 1
            if value < n:
                return value

    def between(self, low: int, high: int) -> int:
        """A uniform integer in [low, high], both included."""
        return low + self.below(high - low + 1)

    def chance(self, percent: int) -> bool:
        """True with the given probability, in percent."""
        return self.below(100) < percent

    def choice(self, items: Sequence[T]) -> T:
        """One item, uniformly."""
        return items[self.below(len(items))]

    def weighted(self, totals: Sequence[int]) -> int:
        """An index i with probability proportional to weight i, given the running totals of the weights."""
        return bisect_right(totals, self.below(totals[-1]))

    def shuffle(self, items: MutableSequence[Any]) -> None:
        """Shuffle in place (Fisher-Yates)."""
        for index in range(len(items) - 1, 0, -1):
            other = self.below(index + 1)
            items[index], items[other] = items[other], items[index]

    def noise(self, count: int) -> bytes:
        """count uniform random bytes in one call, for per-cell noise over a whole grid."""
        # Its own block number, so a second call (or the next word) never repeats these bytes.
        block, self._block, self._index = self._block, self._block + 1, 8
        return hashlib.shake_256(b"noise:" + self._key + block.to_bytes(8, "little")).digest(count)
