"""The README's Quickstart commands, as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quickstart\n+```bash\n(.*?)```", text, re.DOTALL)
    assert block is not None, "the README has a Quickstart with a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quickstart_has_the_demo_and_the_test_command() -> None:
    demo, tests = quickstart_commands()[:2]
    assert demo.endswith("tiktok-oauth demo")
    assert tests == "python -m pip install -e '.[test]' && python -m pytest"
    assert tests in (ROOT / ".ci" / "run").read_text()  # CI runs the README's test command verbatim


@pytest.mark.slow
def test_the_demo_command_runs_as_written_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    demo = quickstart_commands()[0]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        ["bash", "-c", demo], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "13. Stopped the fake" in result.stdout
    assert "requests is not installed" not in result.stdout
