"""The lock and the checks around it: uv.lock current, the image built from it, dependabot, pre-commit, lint config.

Offline: `uv lock --check --offline` needs no network for a current lock. uv comes from .venv-uv
(`make` installs it there from PyPI) or PATH.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tokenize
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
CHECK = ROOT / "scripts" / "check_lock.py"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def uv() -> str:
    found = ROOT / ".venv-uv" / "bin" / "uv"
    if found.is_file():
        return str(found)
    on_path = shutil.which("uv")
    if on_path is None:
        pytest.fail("uv is missing: `make .venv-uv/bin/uv` installs the pinned version", pytrace=False)
    return on_path


def _check(uv: str, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), "--uv", uv, "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """What the lock check reads, copied: pyproject.toml, uv.lock, the exported requirements."""
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(ROOT / name, tmp_path / name)
    (tmp_path / "deploy" / "docker").mkdir(parents=True)
    for name in ("requirements.txt", "build-requirements.txt"):
        shutil.copy2(DOCKER / name, tmp_path / "deploy" / "docker" / name)
    return tmp_path


def test_the_lock_matches_pyproject_and_its_exports(uv):
    done = _check(uv, ROOT)
    assert done.returncode == 0, done.stderr


def test_a_copy_passes_before_it_is_changed(uv, project_copy):
    # The tests below change one thing each; this shows the copy alone passes.
    done = _check(uv, project_copy)
    assert done.returncode == 0, done.stderr


def test_a_changed_bound_in_pyproject_without_a_new_lock_fails_in_one_line_naming_make_lock(uv, project_copy):
    pyproject = project_copy / "pyproject.toml"
    text = pyproject.read_text()
    assert '"rich>=13.7",' in text
    pyproject.write_text(text.replace('"rich>=13.7",', '"rich>=13.8",'))
    done = _check(uv, project_copy)
    assert done.returncode == 1
    # uv says "needs to be updated" when its cache holds every candidate, and fails resolution
    # offline when it does not (which cache a machine has decides): one line naming `make lock`
    # either way, uv's reason in parentheses after it in the second case.
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("uv.lock does not match pyproject.toml: run `make lock` and commit uv.lock")


def test_a_dependency_added_without_a_new_lock_fails_naming_make_lock(uv, project_copy):
    pyproject = project_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"rich>=13.7",', '"rich>=13.7",\n    "six>=1.16",'))
    done = _check(uv, project_copy)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "run `make lock`" in done.stderr


def test_a_hand_edited_image_requirements_file_fails(uv, project_copy):
    requirements = project_copy / "deploy" / "docker" / "requirements.txt"
    requirements.write_text(re.sub(r"^flask==\S+", "flask==3.0.0", requirements.read_text(), flags=re.M))
    done = _check(uv, project_copy)
    assert done.returncode == 1
    assert "deploy/docker/requirements.txt is not what uv.lock exports: run `make lock`" in done.stderr


def test_the_lock_covers_the_runtime_set_and_every_extra_with_hashes():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {package["name"]: package for package in lock["package"]}
    project = packages["ghost-engine"]
    assert set(project["optional-dependencies"]) >= {"local", "postgres", "dev"}
    assert set(project.get("dev-dependencies", {})) >= {"build"}
    for name, package in packages.items():
        if package["source"].get("editable") or package["source"].get("virtual"):
            continue
        files = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
        assert files and all(f["hash"].startswith("sha256:") for f in files), f"{name} has a file without a hash"
    # tasks/sqs_fanout.py overrides private kombu methods of 5.7: the lock must hold that line.
    assert packages["celery"]["version"].startswith("5.7.")
    assert packages["kombu"]["version"].startswith("5.7.")
    for tool in ("ruff", "mypy", "coverage", "celery-types", "boto3-stubs", "mypy-boto3-dynamodb", "mypy-boto3-sqs"):
        assert tool in packages, f"{tool} is not in the lock"


def test_every_image_requirement_is_pinned_and_hashed():
    for name in ("requirements.txt", "build-requirements.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (DOCKER / name).read_text().split("\n", 1)[1])
        assert len(entries) > (2 if name.startswith("build") else 40)
        for entry in entries:
            assert re.match(r"^[A-Za-z0-9._-]+==\S+", entry), entry[:80]
            assert "--hash=sha256:" in entry, f"{entry.split()[0]} has no hash"
    runtime = (DOCKER / "requirements.txt").read_text()
    for dev_only in ("moto==", "pytest==", "ruff==", "mypy==", "coverage==", "psycopg=="):
        assert f"\n{dev_only}" not in runtime, f"{dev_only} is a dev dependency, not the image's"


def test_the_image_installs_the_hashed_runtime_set_then_the_wheel_alone_and_checks_it():
    runtime = (DOCKER / "Dockerfile").read_text().split(" AS runtime", 1)[1]
    install = re.search(r"pip install --no-deps --require-hashes[^\n]* -r /tmp/requirements\.txt", runtime)
    assert install, "the runtime stage installs deploy/docker/requirements.txt hash-checked, without resolving"
    assert "source=deploy/docker/requirements.txt" in runtime
    wheel = re.search(r"pip install --no-deps --no-index /wheels/ghost_engine-\*\.whl \\\n\s+&& pip check", runtime)
    assert wheel, "then the project's wheel alone, then pip check"
    assert runtime.index(install[0]) < runtime.index(wheel[0])
    build = (DOCKER / "Dockerfile").read_text().split(" AS build", 1)[1].split(" AS runtime", 1)[0]
    assert "pip install --no-deps --require-hashes -r deploy/docker/build-requirements.txt" in build
    assert "pip wheel --no-deps --no-build-isolation" in build


def test_every_package_directory_is_in_the_wheel():
    """A subpackage missing from [tool.setuptools] packages is missing from the image (it was: pipeline.layouts)."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in {name.split(".")[0] for name in listed}
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed, (
        f"in the tree, not the wheel: {sorted(found - listed)}; listed, absent: {sorted(listed - found)}"
    )


def test_dependabot_proposes_weekly_grouped_updates_after_a_cooldown():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    updates = {entry["package-ecosystem"]: entry for entry in config["updates"]}
    assert set(updates) >= {"uv", "docker", "github-actions"}
    assert updates["docker"]["directory"] == "/deploy/docker"
    for entry in updates.values():
        assert entry["schedule"]["interval"] == "weekly"
        assert entry["cooldown"]["default-days"] >= 3
    groups = {name: set(group["patterns"]) for name, group in updates["uv"]["groups"].items()}
    assert any({"celery", "kombu"} <= patterns for patterns in groups.values()), "celery and kombu move together"
    assert any({"boto3", "botocore"} <= patterns for patterns in groups.values()), "boto3 and botocore move together"


def test_dependabot_uv_pull_requests_get_the_exports_the_lock_check_asks_for():
    """Dependabot updates uv.lock, not its exports: without this workflow CI fails on every uv update."""
    from check_lock import EXPORTS, REFRESH

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "dependabot-lock.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"pull_request"}
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    # Only Dependabot's own pushes to its uv branches (dependabot.yml's "uv" ecosystem), never a person's.
    assert "github.actor == 'dependabot[bot]'" in job["if"]
    assert "startsWith(github.head_ref, 'dependabot/uv/')" in job["if"]
    assert job["permissions"] == {"contents": "write"}
    checkout = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["ref"] == "${{ github.head_ref }}"  # the branch, to push to: not the merge commit
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[0] == REFRESH  # the command the lock check's message names
    added = next(line.split()[2:] for line in runs[1].splitlines() if line.strip().startswith("git add"))
    for path in ["uv.lock", *EXPORTS]:
        assert any(fnmatch.fnmatch(path, pattern) for pattern in added), f"{path} would not be committed"
    # Dependabot keeps rebasing its branch over the commit (and this runs again after each rebase).
    assert "[dependabot skip]" in runs[1] and 'git push origin "HEAD:refs/heads/$BRANCH"' in runs[1]
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert any(entry["package-ecosystem"] == "uv" for entry in dependabot["updates"])


def test_pre_commit_runs_the_same_checks_with_pinned_revisions():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    assert hooks >= {
        "ruff-check",
        "ruff-format",
        "lock-check",
        "terraform-fmt",
        "end-of-file-fixer",
        "trailing-whitespace",
    }
    for repo in config["repos"]:
        if repo["repo"] != "local":
            assert re.fullmatch(r"[0-9a-f]{40}", repo["rev"]), f"{repo['repo']} is not pinned to a commit"


def test_ruff_selects_the_required_families_and_justifies_each_ignore():
    lint = PYPROJECT["tool"]["ruff"]["lint"]
    assert set(lint["select"]) >= {"E", "W", "F", "I", "B", "UP", "SIM", "S"}
    text = (ROOT / "pyproject.toml").read_text()
    section = text.split("[tool.ruff.lint]", 1)[1].split("\n[", 1)[0]
    ignores = re.search(r"ignore = \[\n(.*?)\n\]", section, re.S)[1].splitlines()
    for number, line in enumerate(ignores):
        if line.strip().startswith('"'):
            assert ignores[number - 1].strip().startswith("#"), f"{line.strip()} has no comment saying why"


def test_every_inline_noqa_names_its_codes_and_says_why():
    """An inline noqa is an ignore too: like those in pyproject.toml, each says why, after its codes."""
    problems = []
    for path in sorted(ROOT.rglob("*.py")):
        top = path.relative_to(ROOT).parts[0]
        if top.startswith(".") or top in {"node_modules", "build"} or top.endswith(".egg-info"):
            continue  # environments and what tools made: not the project's code
        with path.open("rb") as source:
            comments = [t for t in tokenize.tokenize(source.readline) if t.type == tokenize.COMMENT]
        for comment in comments:
            if re.search(r"#\s*noqa\b", comment.string, re.I) and not re.search(
                r"# noqa: [A-Z]+\d+(, [A-Z]+\d+)* - \w", comment.string
            ):
                problems.append(f"{path.relative_to(ROOT)}:{comment.start[0]}: {comment.string}")
    assert not problems, "write `# noqa: CODE - why`:\n" + "\n".join(problems)


def test_every_type_ignore_names_its_code_and_says_why():
    problems = []
    for package in ("api", "tasks", "storage", "pipeline"):
        for path in sorted((ROOT / package).rglob("*.py")):
            lines = path.read_text().splitlines()
            for number, line in enumerate(lines):
                if "type: ignore" not in line:
                    continue
                where = f"{path.relative_to(ROOT)}:{number + 1}"
                if not re.search(r"type: ignore\[[a-z-]+(, *[a-z-]+)*\]", line):
                    problems.append(f"{where}: no error code")
                elif not (
                    re.search(r"type: ignore\[[^\]]+\]\s+#\s*\S", line) or lines[number - 1].strip().startswith("#")
                ):
                    problems.append(f"{where}: no reason")
    assert not problems, problems
