"""What a vanilla Doom engine can load: the limits a node-built map must keep, and the error past them.

Vanilla Doom (and chocolate-doom, which copies it) keeps map references in signed 16-bit
fields: a seg's vertices and linedef, a subsector's first seg, a node's children (the top bit
marks a subsector), a linedef's sidedefs, a sidedef's sector, and the offsets of the blockmap's
lists. Past 32,767 of anything, or a blockmap list that starts 32,768 words or more into its
lump, the engine reads a negative index and crashes or walks through walls. Extended nodes
(XNOD, ZNOD: a node builder's way out) are for other engines. A level bigger than this gets no
map.wad rather than one that cannot be played; in practice it is the blockmap that runs out
first, at a few hundred rooms (docs/doom-map.md).
"""

from __future__ import annotations

import struct

from ..contract import PipelineError
from .wad import read_lumps

MAX_INDEX = 32767
# Bytes per entry of each map lump whose entries something else refers to by a 16-bit index.
_ENTRY_SIZES = {"VERTEXES": 4, "LINEDEFS": 14, "SIDEDEFS": 30, "SECTORS": 26, "SEGS": 12, "SSECTORS": 4, "NODES": 28}
_EXTENDED_NODES = (b"XNOD", b"ZNOD", b"XGLN", b"ZGLN", b"XGL2", b"ZGL2", b"XGL3", b"ZGL3")
_MAP_LUMP_NAMES = frozenset(_ENTRY_SIZES) | {"THINGS", "REJECT", "BLOCKMAP", "BEHAVIOR"}
_BLOCKMAP_HEADER = 4  # words: origin x and y, columns, rows


class MapTooLarge(PipelineError):
    """The level is bigger than a vanilla Doom map can hold (a limit of the format, not a bug)."""


def check_vanilla_limits(wad: bytes, map_name: str = "MAP01") -> None:
    """Raise MapTooLarge unless the node-built map_name in wad keeps every vanilla limit."""
    lumps = dict(_map_lumps(read_lumps(wad), map_name))
    for name, size in _ENTRY_SIZES.items():
        count = len(lumps.get(name, b"")) // size
        if count > MAX_INDEX:
            raise MapTooLarge(f"the map has {count:,} {name.lower()}; vanilla Doom holds at most {MAX_INDEX:,}")
    if lumps.get("NODES", b"")[:4] in _EXTENDED_NODES:
        raise MapTooLarge("the node builder had to write extended nodes, which vanilla Doom cannot read")
    _check_blockmap(lumps.get("BLOCKMAP", b""))


def _check_blockmap(blockmap: bytes) -> None:
    words = len(blockmap) // 2
    if words < _BLOCKMAP_HEADER:
        raise PipelineError("the map has no blockmap: give it nodes first")
    columns, rows = struct.unpack_from("<HH", blockmap, 4)
    blocks = columns * rows
    if _BLOCKMAP_HEADER + blocks > words:
        raise PipelineError("the map's blockmap is shorter than its own header says")
    # Offsets are stored unsigned; a lump longer than 65,535 words has had them wrapped.
    offsets = struct.unpack_from(f"<{blocks}H", blockmap, 2 * _BLOCKMAP_HEADER)
    last = max(offsets, default=0)
    if words > 0xFFFF or last > MAX_INDEX:
        raise MapTooLarge(
            f"the map's blockmap is {words:,} words; vanilla Doom reaches at most {MAX_INDEX:,} words into it"
        )


def _map_lumps(lumps: list[tuple[str, bytes]], map_name: str) -> list[tuple[str, bytes]]:
    """The lumps after the map's marker, up to the next lump that is not one of a map's."""
    names = [name for name, _ in lumps]
    if map_name not in names:
        raise PipelineError(f"the WAD has no map {map_name}")
    start = names.index(map_name) + 1
    end = start
    while end < len(lumps) and lumps[end][0] in _MAP_LUMP_NAMES:
        end += 1
    return lumps[start:end]
