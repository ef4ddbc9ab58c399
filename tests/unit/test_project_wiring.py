"""The wiring that makes CI hold the project's checks: read from the files, never run.

Each check here is one a quiet edit could undo with every test still green: CI no longer
running `make lint`, an install resolving afresh instead of from the lock, mypy or coverage
loosened. The checks themselves (the lock, ruff's families, type ignores) are in test_lock.py.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGES = {"api", "tasks", "storage", "pipeline"}
# Every flag `mypy --strict` turns on (mypy 1.x), which `strict` itself cannot set per module.
STRICT_FLAGS = {
    "warn_unused_configs",
    "disallow_any_generics",
    "disallow_subclassing_any",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "check_untyped_defs",
    "disallow_untyped_decorators",
    "warn_redundant_casts",
    "warn_unused_ignores",
    "warn_return_any",
    "no_implicit_reexport",
    "strict_equality",
    "extra_checks",
}


class Makefile:
    """The Makefile's variables, rules' prerequisites and recipes (continuation lines joined)."""

    def __init__(self, text: str) -> None:
        self.variables: dict[str, str] = {}
        self.prerequisites: dict[str, list[str]] = {}
        self.recipes: dict[str, list[str]] = {}
        target = None
        for line in text.replace("\\\n", " ").splitlines():
            if line.startswith("\t") and target is not None:
                self.recipes[target].append(line.strip())
            elif re.match(r"^(ifdef|ifndef|else|endif)\b", line):
                continue  # a conditional part of the recipe: both branches are read
            elif match := re.match(r"^([A-Z_]+)\s*[:?]?=\s*(.*)$", line):
                self.variables[match[1]] = match[2].strip()
            elif (match := re.match(r"^([^\s:#=.][^:=]*):(?!=)(.*)$", line)) and not line.startswith("."):
                target = self.expand(match[1].strip())
                self.prerequisites[target] = self.expand(match[2]).split()
                self.recipes[target] = []
            elif line.strip() and not line.startswith("#"):
                target = None

    def expand(self, text: str) -> str:
        """``text`` with every $(VARIABLE) the Makefile defines replaced, recursively."""
        expanded = re.sub(r"\$\(([A-Z_]+)\)", lambda m: self.variables.get(m[1], m[0]), text)
        return expanded if expanded == text else self.expand(expanded)

    def recipe(self, target: str) -> str:
        return "\n".join(self.expand(line) for line in self.recipes[target])


MAKEFILE = Makefile((ROOT / "Makefile").read_text())


def ci_commands() -> list[str]:
    """.ci/run's top-level commands, in order (comments, blank and indented lines left out)."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith((" ", "\t", "#"))]


def test_ci_runs_make_lint_then_make_test_under_coverage_and_stops_at_the_first_failure():
    commands = ci_commands()
    assert "set -euo pipefail" in commands  # a failed `make lint` fails CI before the suite
    assert "make lint" in commands and "make test COVERAGE=1" in commands
    assert commands.index("make lint") < commands.index("make test COVERAGE=1")


def test_every_install_stamp_checks_the_lock_then_syncs_exactly_the_locked_versions():
    lock_check = MAKEFILE.expand("$(LOCK_CHECK)")
    assert "scripts/check_lock.py" in lock_check
    for stamp, extra in ((".venv/.local-installed", "local"), (".venv/.dev-installed", "dev")):
        recipe = MAKEFILE.recipe(stamp)
        assert {"pyproject.toml", "uv.lock"} <= set(MAKEFILE.prerequisites[stamp]), stamp
        syncs = [shlex.split(line) for line in recipe.splitlines() if " sync " in line]
        assert len(syncs) == 1, recipe
        assert recipe.index(lock_check) < recipe.index(" sync "), f"{stamp}: the lock check comes first"
        assert {"--locked", "--extra", extra} <= set(syncs[0]), f"{stamp} must install uv.lock's versions"
        assert "--upgrade" not in syncs[0] and "--no-locked" not in syncs[0]


def test_run_test_and_lint_install_through_the_stamps_and_lint_runs_every_check():
    assert ".venv/.local-installed" in MAKEFILE.prerequisites["run"]
    for target in ("test", "lint"):
        assert ".venv/.dev-installed" in MAKEFILE.prerequisites[target], target
    lint = MAKEFILE.recipe("lint")
    for check in ("scripts/check_lock.py", "ruff check", "ruff format --check", "/mypy", "hadolint", "actionlint"):
        assert check in lint, f"make lint no longer runs {check}"
    assert "exit 1; fi" in lint, "make lint must fail when a check failed"


def test_mypy_checks_every_package_strict_for_storage_and_pipeline():
    mypy = PYPROJECT["tool"]["mypy"]
    assert set(mypy["files"]) >= PACKAGES
    assert mypy["check_untyped_defs"] is True  # the floor for api/ and tasks/
    overrides = mypy.get("overrides", [])
    strict = [o for o in overrides if {"storage", "storage.*", "pipeline", "pipeline.*"} <= set(o["module"])]
    assert len(strict) == 1, "one override makes storage/ and pipeline/ strict"
    for flag in sorted(STRICT_FLAGS):
        assert strict[0].get(flag, mypy.get(flag)) is True, f"storage/ and pipeline/ lost {flag}"
    # No other override may loosen the project's own packages again.
    for override in overrides:
        if not {module.split(".")[0] for module in override["module"]} & PACKAGES:
            continue
        relaxed = {flag for flag in STRICT_FLAGS if override.get(flag) is False}
        relaxed |= {"ignore_errors"} if override.get("ignore_errors") else set()
        relaxed |= {"follow_imports"} if override.get("follow_imports") in ("skip", "silent") else set()
        assert not relaxed, f"{override['module']} loosens {sorted(relaxed)}"


def test_coverage_measures_branches_and_subprocesses_and_keeps_its_floor():
    run, report = PYPROJECT["tool"]["coverage"]["run"], PYPROJECT["tool"]["coverage"]["report"]
    assert run["branch"] is True
    assert {"subprocess", "fork"} <= set(run["patch"]) and run["parallel"] is True
    assert set(run["source_pkgs"]) >= PACKAGES
    assert report["fail_under"] >= 95
    # `make test COVERAGE=1` runs pytest under coverage, then the report that applies the floor.
    test = MAKEFILE.recipe("test")
    assert "coverage run -m pytest" in MAKEFILE.expand(MAKEFILE.variables["PYTEST_RUN"])
    assert "coverage-report" in test
    assert re.search(r"^\S*coverage report$", MAKEFILE.recipe("coverage-report"), re.M)
