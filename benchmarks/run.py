"""Run the benchmarks and print a Markdown report: `python benchmarks/run.py [--quick] [--write docs/benchmarks.md]`.

`nox -s bench` runs this. `--quick` is a smoke run (well under 30 s) whose figures are too short to quote;
`--write PAGE` replaces the part of PAGE between the results markers with this run's report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import e2e
import hot_path
import pickup
import storm
from _timing import Timing, machine

START = "<!-- results:start -->"
END = "<!-- results:end -->"

HOT_TARGETS = {
    # (library, contender, reference, limit): contender's best µs must be <= limit x reference's.
    "requests: TikTokAuth within 1.05x of a minimal correct auth": (
        "requests",
        hot_path.MEMORY,
        hot_path.MINIMAL,
        1.05,
    ),
    "httpx: TikTokAuth within 1.10x of a minimal correct auth": (
        "httpx",
        hot_path.MEMORY,
        hot_path.MINIMAL,
        1.10,
    ),
    "httpx2: TikTokAuth within 1.10x of a minimal correct auth": (
        "httpx2",
        hot_path.MEMORY,
        hot_path.MINIMAL,
        1.10,
    ),
    "requests: TikTokAuth no slower than Authlib": ("requests", hot_path.MEMORY, hot_path.AUTHLIB, 1.0),
    "httpx: TikTokAuth within 2x of the bare flow": ("httpx", hot_path.MEMORY, hot_path.BARE, 2.0),
    "requests: file store within 1.2x of memory store": ("requests", hot_path.FILE, hot_path.MEMORY, 1.2),
    "httpx: file store within 1.2x of memory store": ("httpx", hot_path.FILE, hot_path.MEMORY, 1.2),
}


def hot_table(timings: list[Timing]) -> list[str]:
    by_name = {timing.name: timing for timing in timings}
    bare, minimal = by_name[hot_path.BARE].best_us, by_name[hot_path.MINIMAL].best_us
    authlib = by_name[hot_path.AUTHLIB].best_us if hot_path.AUTHLIB in by_name else None
    lines = [
        "| contender | best µs/call | median µs/call | vs bare | vs minimal | vs Authlib |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {t.name} | {t.best_us:.2f} | {t.median_us:.2f} | {t.best_us / bare:.2f}x | {t.best_us / minimal:.2f}x"
        f" | {'-' if authlib is None else f'{t.best_us / authlib:.2f}x'} |"
        for t in timings
    ]
    return lines


def storm_tables(results: list[storm.StormResult], callers: tuple[int, ...]) -> list[str]:
    names = list(dict.fromkeys(result.contender for result in results))
    cell = {(r.contender, r.callers): r for r in results}
    header = ["| N callers | " + " | ".join(names) + " |", "| ---: |" + " ---: |" * len(names)]
    calls = [
        f"| {n} | " + " | ".join(str(cell[name, n].token_calls) for name in names) + " |" for n in callers
    ]
    served = [f"| {n} | " + " | ".join(f"{cell[name, n].ok}/{n}" for name in names) + " |" for n in callers]
    stale = [
        f"| {n} | " + " | ".join(str(cell[name, n].stale_refresh_uses) for name in names) + " |"
        for n in callers
    ]
    return [
        "Token-endpoint requests (accepted or not):",
        "",
        *header,
        *calls,
        "",
        "Callers whose API request got a 200:",
        "",
        *header,
        *served,
        "",
        "Refresh requests that presented a refresh token rotation had already replaced (TikTok's logout risk):",
        "",
        *header,
        *stale,
    ]


def e2e_table(results: list[e2e.Throughput]) -> tuple[list[str], dict[str, float]]:
    by_name = {result.name: result for result in results}
    ratios = {}
    lines = [
        "| contender | best rps | median rps | best vs static header | paired median vs static header |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        library = result.name.split(" + ")[0]
        header = by_name[f"{library} + static header"]
        best_ratio = result.best / header.best
        paired = e2e.paired_ratio(result, header)
        if result.name.endswith("TikTokAuth"):
            ratios[library] = paired
        lines.append(
            f"| {result.name} | {result.best:,.0f} | {result.median:,.0f} | {best_ratio:.3f} | {paired:.3f} |"
        )
    return lines, ratios


def report(args: argparse.Namespace) -> str:
    number, repeat = (2_000, 3) if args.quick else (5_000, 21)
    callers = (1, 8, 64, 512)
    per_round, rounds = (40, 4) if args.quick else (100, 30)
    info = machine()
    started = time.perf_counter()

    hot = hot_path.run(number, repeat)
    check = pickup.run()
    storms = storm.run(callers)
    throughput = e2e.run(per_round, rounds)

    hot_by = {(lib, t.name): t for lib, timings in hot.items() for t in timings}
    e2e_lines, e2e_ratios = e2e_table(throughput)
    targets = ["| target | measured | met |", "| --- | ---: | :---: |"]
    for label, (library, name, reference, limit) in HOT_TARGETS.items():
        ratio = hot_by[library, name].best_us / hot_by[library, reference].best_us
        targets.append(f"| {label} | {ratio:.2f}x | {'yes' if ratio <= limit else '**no**'} |")
    ours = [r for r in storms if r.contender.startswith("TikTokAuth")]
    worst = max(r.token_calls for r in ours)
    targets.append(
        f"| storm: TikTokAuth makes 1 token request for every N | max {worst} | {'yes' if worst == 1 else '**no**'} |"
    )
    for library, ratio in e2e_ratios.items():
        met = "yes" if ratio >= 0.97 else "**no**"
        targets.append(
            f"| end to end, {library}: TikTokAuth within 3% of a static header | {ratio:.3f} | {met} |"
        )

    load = ", ".join(f"{value:.2f}" for value in info["load"])
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    mode = "quick smoke run: too short to quote" if args.quick else "full run"
    lines = [
        (
            f"Measured {time.strftime('%Y-%m-%d')} ({mode}) on {info['platform']}, {info['python']}, "
            f"{info['cpu']}, {info['cores']} cores, load average {load} at the start; {versions}."
        ),
        "",
        "### Targets",
        "",
        *targets,
        "",
        f"### Hot path: requests (µs per call; best and median of {repeat} runs of {number:,} calls)",
        "",
        *hot_table(hot["requests"]),
        "",
        f"### Hot path: httpx (µs per call; best and median of {repeat} runs of {number:,} calls)",
        "",
        *hot_table(hot["httpx"]),
        "",
        f"### Hot path: httpx2 (µs per call; best and median of {repeat} runs of {number:,} calls)",
        "",
        *hot_table(hot["httpx2"]),
        "",
        "### Another process's refresh is picked up (correctness, not timing)",
        "",
        (
            f"**{'PASS' if check.passed else 'FAIL'}**: after a second `FileTokenStore` wrote a newer token, "
            f"the auth sent the **{check.before_near_expiry}** token while its own was still fresh, and the "
            f"**{check.near_expiry}** token once its own was within `leeway` of expiry; token-endpoint "
            f"requests: {check.token_calls}."
        ),
        "",
        (
            "### Refresh storm (one expired token, N threads released by a barrier, token endpoint takes "
            f"{storm.TOKEN_DELAY * 1000:.0f} ms)"
        ),
        "",
        *storm_tables(storms, callers),
        "",
        f"### End to end on loopback (requests per second; {rounds} interleaved rounds of {per_round} requests)",
        "",
        *e2e_lines,
        "",
        f"The whole run took {time.perf_counter() - started:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def write(page: Path, results: str) -> None:
    text = page.read_text(encoding="utf-8") if page.exists() else "# Benchmarks\n"
    section = f"{START}\n\n{results}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Results\n\n" + section + "\n"
    page.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (figures not worth quoting)")
    parser.add_argument("--write", type=Path, metavar="PAGE", help="rewrite PAGE's results section")
    args = parser.parse_args(argv)
    results = report(args)
    print(results)
    if args.write is not None:
        write(args.write, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
