"""Is uv.lock current? `make lock-check` (and so `make lint`, CI and pre-commit) runs this; `make lock` refreshes.

    python scripts/check_lock.py --uv PATH [--project DIR] [--write]

Checks, failing with one line that names `make lock`:
- uv.lock satisfies pyproject.toml (`uv lock --check`, offline: a current lock needs no network);
- every file exported from the lock (the image's hash-checked requirements) is what the lock exports.
With --write it (re)writes those exported files instead; `make lock` runs it after `uv lock`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REFRESH = "make lock"

# Exported from uv.lock for the image (deploy/docker/Dockerfile) and the test that builds the same
# environment (tests/deploy/test_image_environment.py): file -> what of the lock it holds.
EXPORTS = {
    "deploy/docker/requirements.txt": (
        "The runtime set: the project's dependencies without extras or groups",
        ["--no-dev", "--no-emit-project"],
    ),
    "deploy/docker/build-requirements.txt": (
        "The build backend the image builds the project's wheel with (the `build` group)",
        ["--only-group", "build", "--no-emit-project"],
    ),
}


def exported(uv: str, project: Path, path: str) -> str:
    """The text ``path`` must hold: a header, then uv's export of the lock, with hashes."""
    what, selection = EXPORTS[path]
    argv = [uv, "export", "--frozen", "--offline", "--no-header", "--format", "requirements.txt", *selection]
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"uv export failed for {path}: {done.stderr.strip()}")
    header = f"# {what}, exported from uv.lock with hashes by `{REFRESH}`; do not edit.\n"
    return header + done.stdout


def check(uv: str, project: Path) -> str | None:
    """None when the lock and its exports are current, else the one line that says what to run."""
    done = subprocess.run(
        [uv, "lock", "--check", "--offline"], cwd=project, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        message = f"uv.lock does not match pyproject.toml: run `{REFRESH}` and commit uv.lock"
        if "needs to be updated" in done.stderr:
            return message
        # Offline, a requirement the lock lacks can fail resolution instead; say what uv said.
        said = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        return f"{message} ({said[0] if said else done.stderr.strip()})"
    for path in EXPORTS:
        target = project / path
        if not target.is_file() or target.read_text() != exported(uv, project, path):
            return f"{path} is not what uv.lock exports: run `{REFRESH}` and commit it"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", required=True, help="the uv executable")
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--write", action="store_true", help="rewrite the exported files from uv.lock")
    args = parser.parse_args(argv)
    # uv runs in the project's directory: a relative path to it must not change meaning.
    args.uv = shutil.which(args.uv) or args.uv
    args.uv = os.path.abspath(args.uv) if os.sep in args.uv else args.uv
    if args.write:
        for path in EXPORTS:
            (args.project / path).write_text(exported(args.uv, args.project, path))
        return 0
    problem = check(args.uv, args.project)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
