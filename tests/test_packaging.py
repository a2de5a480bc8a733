"""The package as users get it: the built wheel (not the checkout) in a fresh venv, its metadata, the release.

The docs' samples run against that installed wheel too. Building the wheel takes a few seconds (set `TIKTOK_OAUTH_WHEEL` to test a prebuilt one, as the release
workflow does). The fresh venv gets the wheel itself, without its dependencies: those, and the extras'
dependencies, come from the environment running the tests (which the README's test command filled), added
as a plain path entry, so that no `.pth` file there (the checkout's editable install) takes effect. Every
requirement of every extra is checked to be satisfied there, so a missing or too old dependency still
fails. A full resolution from the package index takes about a minute here; the release workflow does it.
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = ("redis", "sql", "starlette", "flask", "django", "niquests", "aiohttp", "progress", "qr")
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def public_modules() -> list[str]:
    """Every module of the package whose dotted name has no part starting with `_`, from the source tree."""
    names = []
    for path in sorted((ROOT / "tiktok_oauth").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            names.append(".".join(parts))
    return names


def test_the_public_modules_include_every_door() -> None:
    expected = {
        "tiktok_oauth", "tiktok_oauth.stores", "tiktok_oauth.stores.redis", "tiktok_oauth.stores.sql",
        "tiktok_oauth.stores.encrypted", "tiktok_oauth.stores.file", "tiktok_oauth.web", "tiktok_oauth.keeper",
        "tiktok_oauth.testing", "tiktok_oauth.cli", "tiktok_oauth.integrations.starlette",
        "tiktok_oauth.integrations.flask", "tiktok_oauth.integrations.django", "tiktok_oauth.integrations.aiohttp",
        "tiktok_oauth.webhooks",
    }  # fmt: skip
    assert expected <= set(public_modules())


def test_the_readme_names_an_install_line_for_every_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    extras = set(PYPROJECT["project"]["optional-dependencies"]) - {"test", "docs", "dev"}
    assert extras == set(EXTRAS)
    assert {extra for extra in extras if f"pip install 'tiktok-oauth[{extra}]'" not in readme} == set()
    assert "pip install tiktok-oauth " in readme


def test_every_tested_python_has_a_classifier_and_a_place_in_the_release_matrix() -> None:
    classified = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r".*Python :: 3\.\d+", c)
    }
    matrix = re.search(r"python-version:\s*\[([^\]]*)\]", WORKFLOW.read_text())
    assert matrix is not None, "the release workflow has a python-version matrix"
    assert (
        classified == {v.strip().strip("\"'") for v in matrix.group(1).split(",")} == {"3.11", "3.12", "3.13"}
    )
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"


def test_the_release_workflow_publishes_by_trusted_publishing_after_the_tests() -> None:
    text = WORKFLOW.read_text()
    assert "pypa/gh-action-pypi-publish@" in text
    assert re.search(r"permissions:\s*\n\s*id-token: write", text)
    assert "password:" not in text  # no API token: trusted publishing
    assert re.search(r"publish:(?:.|\n)*needs: \[[^\]]*build", text)
    assert "bash .ci/run" in text  # the tests as CI runs them


def test_the_changelog_has_an_unreleased_section_and_an_entry_for_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    version = re.search(
        r'^__version__ = "([^"]+)"', (ROOT / "tiktok_oauth" / "__init__.py").read_text(), re.MULTILINE
    )
    assert version is not None
    assert headings[0] == "Unreleased"
    assert version.group(1) in headings
    assert f"[{version.group(1)}]: " in text  # Keep a Changelog's link for each version


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prebuilt = os.environ.get("TIKTOK_OAUTH_WHEEL")
    if prebuilt:
        return Path(prebuilt)
    # One build for every pytest-xdist worker: they share the base temporary directory's parent.
    out = tmp_path_factory.getbasetemp().parent / "tiktok-oauth-dist"
    with FileLock(f"{out}.lock"):
        if not list(out.glob("tiktok_oauth-*.whl")):
            subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(out), str(ROOT)],
                check=True,
                timeout=180,
                capture_output=True,
            )
    (built,) = out.glob("tiktok_oauth-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_the_package_typed_licensed_and_no_tests(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
    assert "tiktok_oauth/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "docs/", "benchmarks/")) or "/tests/" in n]
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert set(metadata.get_all("Provides-Extra")) >= {*EXTRAS, "test", "docs"}
    assert {url.split(",")[0] for url in metadata.get_all("Project-URL")} >= {
        "Homepage",
        "Source",
        "Changelog",
    }
    assert metadata["Description-Content-Type"] == "text/markdown"


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    # The dependencies: this environment's site-packages as a plain path entry, after the venv's own.
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def run_in(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_the_installed_wheel_satisfies_every_extra_and_imports_every_public_module(
    fresh_venv: Path, tmp_path: Path
) -> None:
    probe = f"""
import importlib, importlib.metadata as md, json, sys
from packaging.requirements import Requirement
missing = []
for text in md.requires("tiktok-oauth"):
    req = Requirement(text)
    extras = [e for e in {EXTRAS!r} if req.marker is None or req.marker.evaluate({{"extra": e}})]
    if req.marker is not None and not extras:
        continue  # test, docs, dev: the tests' own tools
    try:
        if not req.specifier.contains(md.version(req.name), prereleases=True):
            missing.append(f"{{text}}: {{md.version(req.name)}}")
    except md.PackageNotFoundError:
        missing.append(text)
files = {{}}
for name in {public_modules()!r}:
    files[name] = importlib.import_module(name).__file__
print(json.dumps({{"missing": missing, "files": files, "version": md.version("tiktok-oauth")}}))
"""
    result = run_in(fresh_venv, fresh_venv, "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    found = json.loads(result.stdout)
    assert found["missing"] == []
    venv = str(fresh_venv.parent.parent)
    assert {name: file for name, file in found["files"].items() if not file.startswith(venv)} == {}
    assert len(found["files"]) == len(public_modules())


@pytest.mark.slow
def test_the_installed_wheel_runs_the_demo(fresh_venv: Path, tmp_path: Path) -> None:
    result = run_in(fresh_venv, fresh_venv.parent / "tiktok-oauth", "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "13. Stopped the fake" in result.stdout
    assert "requests is not installed" not in result.stdout


@pytest.mark.slow
def test_the_docs_samples_run_against_the_installed_wheel(fresh_venv: Path, tmp_path: Path) -> None:
    # A copy of the samples and their harness, without the package's source: only the wheel can answer.
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs", copy / "docs")
    for name in ("README.md", "pyproject.toml"):  # pyproject.toml: pytest's settings (warnings are errors)
        shutil.copy(ROOT / name, copy / name)
    where = run_in(
        fresh_venv, fresh_venv, "-c", "import tiktok_oauth; print(tiktok_oauth.__file__)", cwd=copy
    )
    assert where.stdout.startswith(str(fresh_venv.parent.parent)), where.stdout + where.stderr
    result = run_in(
        fresh_venv, fresh_venv, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider",
        "tests/test_docs.py", "-k", "test_sample_runs", cwd=copy,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b\d{2,} passed", result.stdout), result.stdout[-500:]
