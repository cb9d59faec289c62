"""Time a reproduction: run `dvc repro` (arguments pass through), echo its output, and write
each stage's wall time and the total to a metrics file, with the CPU it ran on.

A stage's time runs from dvc's "Running stage" line to the next one (or to the end), so it
includes dvc's own hashing and caching of that stage's outputs. Stages dvc skipped as
unchanged are listed with 0 seconds.

A full reproduction takes hours, and may be cut off (a stopped machine, a killed job). The file
is rewritten as the run goes (`"complete": false` until dvc ends well), and `--resume` adds the
next run as a new segment, with its own CPU description: stage times and the total are summed
over the segments, so the time lost to an interruption stays counted. `--replace` adds a rerun
of stages that were timed already (after a lost cache, say) and drops their earlier times, so
each stage's time is that of the run behind its entry in dvc.lock.

    python bench/repro_time.py [--out bench/results/repro_time.json] [--resume | --replace]
        [-- dvc repro args]
"""

from __future__ import annotations

import argparse
import json
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


SAVE_EVERY = 30.0  # seconds between rewrites of the times file while dvc runs


def summed(segments: list[dict]) -> dict:
    """The run's totals: each stage's seconds and the wall time, over all segments."""
    stages: dict[str, float] = {}
    for segment in segments:
        for name, seconds in segment["stages"].items():
            stages[name] = round(stages.get(name, 0.0) + seconds, 1)
    return {"total_seconds": sum(s["seconds"] for s in segments), "stages": stages}


def replaced(segments: list[dict], ran: set[str]) -> list[dict]:
    """The segments without the times of the stages in `ran`; a segment left with no stage that
    ran in it (only skipped ones, at 0 s) goes too."""
    kept = []
    for segment in segments:
        stages = {name: s for name, s in segment["stages"].items() if name not in ran}
        if any(stages.values()):
            dropped = sum(segment["stages"].values()) - sum(stages.values())
            kept.append(
                {**segment, "seconds": round(segment["seconds"] - dropped, 1), "stages": stages}
            )
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/repro_time.json"))
    added = parser.add_mutually_exclusive_group()
    added.add_argument("--resume", action="store_true", help="add to the run in --out")
    added.add_argument(
        "--replace", action="store_true", help="add to --out, dropping the rerun stages' times"
    )
    parser.add_argument("dvc_args", nargs="*", help="passed to dvc repro")
    args = parser.parse_args()
    earlier = json.loads(args.out.read_text())["segments"] if args.resume or args.replace else []
    machine = describe()
    start = time.time()
    lines: list[tuple[float, str]] = []

    def save(complete: bool) -> dict:
        now = time.time()
        stages = {name: round(s, 1) for name, s in stage_times(lines, now).items()}
        segment = {**machine, "seconds": round(now - start, 1), "stages": stages}
        before = replaced(earlier, {n for n, s in stages.items() if s}) if args.replace else earlier
        times = {"complete": complete, **summed([*before, segment])}
        write_json(args.out, {**times, "segments": [*before, segment]})
        return times

    saved = start
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
            if time.time() - saved > SAVE_EVERY:
                save(complete=False)
                saved = time.time()
    times = save(complete=process.returncode == 0)
    if process.returncode:  # kept as an unfinished segment, for --resume
        sys.exit(process.returncode)
    print(f"repro_time: {times['total_seconds']:.0f} s in all; per stage in {args.out}")


if __name__ == "__main__":
    main()
