"""Doom output for a scene/1 level: the map MAP01 (without nodes) and a demo that plays it to the exit.

Pure like the rest of pipeline/: scene data in, bytes out, the same bytes for the same scene.
A node builder (tasks/doom_nodes.py) turns build_map's WAD into one an engine can load.
"""

from .demo import write_demo
from .mapwad import CELL, build_map
from .scene import read_scene

__all__ = ["CELL", "build_map", "read_scene", "write_demo"]
