"""Give a Doom map its nodes with Debian's zdbsp, in a temporary directory, bounded in time.

pipeline.doom.build_map writes a map without BSP nodes (omgifol builds none), and no engine
loads a map without them. zdbsp builds vanilla nodes, the blockmap and a zero-filled reject
table; it is a separate program, so this is I/O and lives in tasks/, not in pipeline/. What it
returns is checked against the vanilla engine's limits (pipeline.doom.check_vanilla_limits).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pipeline.doom import check_vanilla_limits
from storage.errors import GhostEngineError

NODE_BUILDER = "zdbsp"
# zdbsp takes under 0.2 s for the largest level (1,000 rooms). Far inside the step's time limit
# (STEP_TIME_LIMIT_SECONDS, 120 by default), so a stuck zdbsp costs map.wad, not the job.
DEFAULT_TIMEOUT_SECONDS = 30.0


class NodeBuilderError(GhostEngineError):
    """The map could not be given nodes."""

    code = "NODE_BUILDER_FAILED"


class NodeBuilderMissing(NodeBuilderError):
    """zdbsp is not installed, so no map.wad can be made (the rest of the job is unaffected)."""

    code = "NODE_BUILDER_MISSING"


def node_builder() -> str | None:
    """The path of zdbsp, or None when it is not installed."""
    return shutil.which(NODE_BUILDER)


def require_node_builder() -> str:
    """The path of zdbsp; NodeBuilderMissing when it is not installed."""
    executable = node_builder()
    if executable is None:
        raise NodeBuilderMissing(f"{NODE_BUILDER} is not installed (Debian package {NODE_BUILDER})")
    return executable


def build_nodes(wad: bytes, *, timeout: float = DEFAULT_TIMEOUT_SECONDS, executable: str | None = None) -> bytes:
    """Return the WAD with nodes, blockmap and reject built for its map.

    NodeBuilderError if zdbsp cannot make them; pipeline.doom.MapTooLarge if the result is more
    than a vanilla engine can hold.
    """
    executable = executable or require_node_builder()
    with tempfile.TemporaryDirectory(prefix="ghost-nodes-") as scratch:
        source, built = Path(scratch) / "map.wad", Path(scratch) / "built.wad"
        source.write_bytes(wad)
        # -R: a reject table of zeroes of the right size (vanilla reads past a short one);
        # -t: no timing lines, so the output says only what went wrong.
        command = [executable, "-R", "-t", "-o", str(built), str(source)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise NodeBuilderError(f"{NODE_BUILDER} took longer than {timeout:g} s") from exc
        except OSError as exc:
            raise NodeBuilderMissing(f"{NODE_BUILDER} could not be started: {exc.strerror}") from exc
        if done.returncode != 0 or not built.is_file():
            output = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise NodeBuilderError(
                f"{NODE_BUILDER} failed (exit {done.returncode})",
                details={"output": output},
            )
        result = built.read_bytes()
    check_vanilla_limits(result)
    return result
