"""Timing helpers shared by the benchmarks: repeated runs, interleaved contenders, gc paused while timing."""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

# A contender is a name and a `prepare()` that builds `number` fresh inputs and returns the loop to time.
Loop = Callable[[], None]
Prepare = Callable[[int], Loop]


@dataclass(frozen=True)
class Timing:
    """Nanoseconds per call of each repeat (one repeat = one timed loop of `number` calls)."""

    name: str
    per_call_ns: tuple[float, ...]

    @property
    def best_us(self) -> float:
        return min(self.per_call_ns) / 1000

    @property
    def median_us(self) -> float:
        return statistics.median(self.per_call_ns) / 1000


def time_interleaved(contenders: Sequence[tuple[str, Prepare]], number: int, repeat: int) -> list[Timing]:
    """Time every contender `repeat` times, round-robin, so drift in machine load hits them all alike.

    Inputs are built by `prepare` outside the timed region; the garbage collector is paused while timing.
    """
    results: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for _ in range(repeat):
        for name, prepare in contenders:
            loop = prepare(number)
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter_ns()
                loop()
                elapsed = time.perf_counter_ns() - start
            finally:
                gc.enable()
            results[name].append(elapsed / number)
    return [Timing(name, tuple(results[name])) for name, _ in contenders]


def cpu_model() -> str:
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    versions = {}
    for package in ("tiktok-oauth", "authlib", "httpx", "httpx2", "requests"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load": load,
        "versions": versions,
    }
