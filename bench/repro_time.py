"""Time a reproduction: run `dvc repro` (arguments pass through), echo its output, and write
each stage's wall time and the total to a metrics file, with the CPU it ran on.

A stage's time runs from dvc's "Running stage" line to the next one (or to the end), so it
includes dvc's own hashing and caching of that stage's outputs. Stages dvc skipped as
unchanged are listed with 0 seconds.

    python bench/repro_time.py [--out metrics/repro_time.json] [-- dvc repro arguments]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from machine import describe  # beside this script

from nmt.io import write_json

RUNNING = re.compile(r"^Running stage '([^']+)'")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")


def stage_times(lines: list[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds per stage from (time, line) pairs of dvc's output, in the order dvc ran them."""
    times: dict[str, float] = {}
    current: tuple[str, float] | None = None
    for stamp, line in lines:
        if current and (RUNNING.match(line) or SKIPPED.match(line)):
            times[current[0]] = stamp - current[1]
            current = None
        if started := RUNNING.match(line):
            current = (started.group(1), stamp)
        elif skipped := SKIPPED.match(line):
            times[skipped.group(1)] = 0.0
    if current:
        times[current[0]] = end - current[1]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("metrics/repro_time.json"))
    parser.add_argument("dvc_args", nargs="*", help="passed to dvc repro")
    args = parser.parse_args()
    start = time.time()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        ["dvc", "repro", *args.dvc_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append((time.time(), line.rstrip("\n")))
    end = time.time()
    if process.returncode:
        sys.exit(process.returncode)  # a failed run's times would describe no reproduction
    stages = stage_times(lines, end)
    write_json(
        args.out,
        {
            **describe(),
            "total_seconds": end - start,
            "stages": {name: round(seconds, 1) for name, seconds in stages.items()},
        },
    )
    print(f"repro_time: {end - start:.0f} s in all; per stage in {args.out}")


if __name__ == "__main__":
    main()
