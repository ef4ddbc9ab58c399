"""Doom output for a scene/1 level: the map MAP01 (without nodes) and a demo that plays it to the exit.

Pure like the rest of pipeline/: scene data in, bytes out, the same bytes for the same scene.
A node builder (tasks/doom_nodes.py) turns build_map's WAD into one an engine can load, and
check_vanilla_limits says whether the result is one a vanilla engine can hold.
"""

from .demo import DEMO_LUMP, add_demo, write_demo
from .limits import MapTooLarge, check_vanilla_limits
from .mapwad import CELL, build_map
from .scene import read_scene

__all__ = [
    "CELL",
    "DEMO_LUMP",
    "MapTooLarge",
    "add_demo",
    "build_map",
    "check_vanilla_limits",
    "read_scene",
    "write_demo",
]
