"""How long `import tiktok_oauth` takes next to `import httpx2`: fresh processes, side by side.

`python benchmarks/import_time.py [--runs 10]` starts `python -c "import httpx2"` and
`python -c "import tiktok_oauth"` in turn (A B A B ...), `--runs` times each after a warm-up, and prints
the medians of the wall times, the ratio of the medians and the median of the pairwise ratios (the figure
that holds when the machine's speed drifts), plus each import's own `-X importtime` total.

Bytecode is cached for both, as a pip-installed package has it: the runs get a private
`PYTHONPYCACHEPREFIX` and `PYTHONDONTWRITEBYTECODE` is unset, else an editable checkout would compile
the package's sources in every process and the figure would measure the compiler.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.15  # issues 12 and 17: within 1.15x of `import httpx2` (what the library itself needs)
CONTENDERS = {
    "httpx2": "import httpx2",
    "tiktok_oauth": "import tiktok_oauth",
    "tiktok_oauth (client + auth)": "from tiktok_oauth import TikTokAuth, TikTokOAuth2Client",
}
#: Modules a first request does not need; `import tiktok_oauth` should leave them out.
LAZY = ("asyncio", "filelock", "tiktok_oauth.stores.file", "cryptography", "requests", "redis")


def run_once(code: str, environ: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=environ, cwd=ROOT)  # noqa: S603 - fixed code
    return time.perf_counter() - start


def importtime_us(code: str, environ: dict[str, str]) -> int:
    """The cumulative `-X importtime` microseconds of the imports `code` makes (the top-level rows)."""
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-X", "importtime", "-c", code],
        check=True,
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  "):  # a top-level import of `code`, not one nested in it
                total += int(cumulative)
    return total


def eager_modules(environ: dict[str, str]) -> list[str]:
    code = f"import sys, tiktok_oauth; print(' '.join(m for m in {LAZY!r} if m in sys.modules))"
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], check=True, env=environ, cwd=ROOT, capture_output=True, text=True
    )
    return result.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per contender (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pycache-") as cache:
        environ = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        environ.pop("PYTHONDONTWRITEBYTECODE", None)
        for code in CONTENDERS.values():  # warm-up: writes the bytecode caches
            run_once(code, environ)
        walls: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for _ in range(args.runs):
            for name, code in CONTENDERS.items():
                walls[name].append(run_once(code, environ))
        own = {
            name: statistics.median(importtime_us(code, environ) for _ in range(5))
            for name, code in CONTENDERS.items()
        }
        eager = eager_modules(environ)

    httpx_walls = walls["httpx2"]
    print(f"Python {sys.version.split()[0]}, {args.runs} fresh processes each, interleaved")
    print()
    print(
        "| import | median wall ms | vs httpx2 (medians) | vs httpx2 (median of pairs) | -X importtime ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, times in walls.items():
        pairs = statistics.median(a / b for a, b in zip(times, httpx_walls, strict=True))
        ratio = statistics.median(times) / statistics.median(httpx_walls)
        print(
            f"| `{CONTENDERS[name]}` | {statistics.median(times) * 1000:.1f} | {ratio:.2f}x | {pairs:.2f}x "
            f"| {own[name] / 1000:.1f} |"
        )
    print()
    pairs = statistics.median(a / b for a, b in zip(walls["tiktok_oauth"], httpx_walls, strict=True))
    verdict = "met" if pairs <= TARGET else "not met"
    print(f"Target: `import tiktok_oauth` within {TARGET}x of `import httpx2`: {pairs:.2f}x, {verdict}.")
    print(f"Imported eagerly that a first request does not need: {', '.join(eager) or 'none'}.")


if __name__ == "__main__":
    main()
