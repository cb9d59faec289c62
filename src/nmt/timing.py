"""The time of a reproduction, read off dvc's own lines, kept in bench/results/repro_time.json
(`make repro` through `nmt.lanes`, or `bench/repro_time.py` around one `dvc repro`).

A stage runs from dvc's "Running stage" line to the next stage's line or the end of its dvc
process, so its time includes dvc's hashing and caching of its outputs; a stage dvc skipped
as unchanged is listed at 0 seconds. The file holds one segment per run that added to it:
the machine (`nmt.runtime.describe`), the run's wall time, each stage's seconds and its
`spans` (start and end, in seconds after the segment's `started`, and its lane in a run in
lanes, with `lanes` the number that ran at once); at the top, the stages' seconds summed over
the segments, the wall time they cover (two runners at once count their common time once),
and whether the last run ended well (`complete`). A run
cut off and run again adds a segment, so the time lost stays counted; a rerun of stages
timed already replaces their earlier times, so each stage's time is that of the run behind
its entry in dvc.lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from nmt import NMTError
from nmt.io import write_json

REPRO_TIME = Path("bench/results/repro_time.json")  # in git: the results tables quote it
SAVE_EVERY = 30.0  # seconds between rewrites of the file while a stage runs
RUNNING = re.compile(r"^Running stage '([^']+)'")
SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
Segment = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """What a line of dvc's output says of a stage."""

    kind: Literal["started", "ended", "skipped"]
    stage: str
    seconds: float = 0.0  # ended: how long it ran


@dataclass
class Clock:
    """The stages of one dvc process, timed from its output lines."""

    lane: str | None = None  # the lane it ran in, if any
    spans: dict[str, tuple[float, float | None]] = field(default_factory=dict)  # end: None runs
    skipped: list[str] = field(default_factory=list)
    current: str | None = None  # the stage running now

    def read(self, line: str, now: float) -> list[Event]:
        """The events one line marks: a stage starting or skipped ends the one before."""
        started, skipped = RUNNING.match(line), SKIPPED.match(line)
        if not (started or skipped):
            return []
        events = self.stop(now)
        if started:
            self.current = started.group(1)
            self.spans[self.current] = (now, None)
            events.append(Event("started", self.current))
        elif skipped:
            self.skipped.append(skipped.group(1))
            events.append(Event("skipped", skipped.group(1)))
        return events

    def stop(self, now: float) -> list[Event]:
        """End the running stage, if any: at the next stage's line, or the process's end."""
        if self.current is None:
            return []
        stage, self.current = self.current, None
        start = self.spans[stage][0]
        self.spans[stage] = (start, now)
        return [Event("ended", stage, now - start)]


def segment(
    machine: dict[str, object], start: float, now: float, clocks: Iterable[Clock], lanes: int = 0
) -> Segment:
    """One run's entry, as of `now` (a stage still running counts until then); `lanes`: how
    many ran at once, 0 for one plain `dvc repro`."""
    stages: dict[str, float] = {}
    spans: dict[str, dict[str, object]] = {}
    for clock in clocks:
        for name in clock.skipped:
            stages.setdefault(name, 0.0)  # unless another clock ran it
        for name, (begin, end) in clock.spans.items():
            end = now if end is None else end
            stages[name] = round(end - begin, 1)
            lane = {"lane": clock.lane} if clock.lane else {}
            spans[name] = {**lane, "start": round(begin - start, 1), "end": round(end - start, 1)}
    started = datetime.fromtimestamp(start, timezone.utc).isoformat(timespec="seconds")
    return {
        **machine,
        **({"lanes": lanes} if lanes else {}),
        "started": started,
        "seconds": round(now - start, 1),
        "stages": stages,
        "spans": spans,
    }


def covered(intervals: Iterable[tuple[float, float]]) -> float:
    """The length of the union of the intervals: overlapping parts counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total


def busy(segment: Segment) -> float:
    """The seconds in which some stage of the segment ran (side by side ones counted once);
    older segments, without spans, ran their stages one after another."""
    if "spans" not in segment:
        return float(sum(segment["stages"].values()))
    return covered((s["start"], s["end"]) for s in segment["spans"].values())


def summed(segments: list[Segment]) -> dict[str, Any]:
    """The run's totals: each stage's seconds and the wall time, over all segments. Two runners
    at once (a second `--archs` lane beside the first) give overlapping segments, whose common
    time counts once; older segments, without their start, are added up."""
    stages: dict[str, float] = {}
    for part in segments:
        for name, seconds in part["stages"].items():
            stages[name] = round(stages.get(name, 0.0) + seconds, 1)
    runs = [
        (datetime.fromisoformat(s["started"]).timestamp(), s["seconds"])
        for s in segments
        if "started" in s
    ]
    wall = covered((start, start + seconds) for start, seconds in runs)
    undated = sum(s["seconds"] for s in segments if "started" not in s)
    return {"total_seconds": round(wall + undated, 1), "stages": stages}


def replaced(segments: list[Segment], ran: set[str]) -> list[Segment]:
    """The segments without the times of the stages in `ran`, each segment's wall time less the
    time only those stages were running; a segment left with no stage that ran in it (only
    skipped ones, at 0 s) goes too."""
    kept = []
    for part in segments:
        stages = {name: s for name, s in part["stages"].items() if name not in ran}
        if any(stages.values()):
            thinned = {**part, "stages": stages}
            if "spans" in part:
                thinned["spans"] = {n: s for n, s in part["spans"].items() if n not in ran}
            thinned["seconds"] = round(part["seconds"] - busy(part) + busy(thinned), 1)
            kept.append(thinned)
    return kept


def recorded(path: Path) -> dict[str, Any]:
    """The timing file's contents; where there is none, no stage, no segment and no run to
    continue."""
    if not path.is_file():
        return {"complete": False, "stages": {}, "segments": []}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise NMTError(
            f"{path} is not a timing file (damaged?): restore it (`git checkout -- {path}`) "
            "or remove it to start a new one"
        ) from None


@dataclass(frozen=True)
class TimesFile:
    """The timing file a run adds its segment to, rewritten as the run goes."""

    path: Path
    earlier: list[Segment]  # the segments of the runs before
    replaces_in: int = 0  # earlier[:n], the runs before this one: a stage that runs drops its
    # times from those

    @classmethod
    def continuing(cls, path: Path) -> TimesFile:
        """After an unfinished run, its continuation; after a finished one, a rerun of the
        stages that run; a new file where there is none."""
        times = recorded(path)
        return cls.of(path, times, replace=times["complete"])

    @classmethod
    def resuming(cls, path: Path) -> TimesFile:
        """The next segment of the run in the file: a rerun cut off and resumed still replaces
        the times of the runs before it."""
        return cls.of(path, recorded(path), replace=False)

    @classmethod
    def replacing(cls, path: Path) -> TimesFile:
        """A rerun of stages timed in the file, whose times it replaces."""
        return cls.of(path, recorded(path), replace=True)

    @classmethod
    def of(cls, path: Path, times: dict[str, Any], replace: bool) -> TimesFile:
        """A run after the file's `times`: replacing all their segments' stage times, or going
        on replacing where the run it continues did."""
        segments = times["segments"]
        return cls(path, segments, len(segments) if replace else times.get("replaces_in", 0))

    def save(self, run: Segment, complete: bool) -> dict[str, Any]:
        """Write the file with `run` as its last segment (none if no stage has run yet); its
        totals."""
        ran = {name for name, seconds in run["stages"].items() if seconds}
        older = replaced(self.earlier[: self.replaces_in], ran)
        before = [*older, *self.earlier[self.replaces_in :]]
        segments = [*before, run] if ran else before
        times = {"complete": complete, **summed(segments)}
        write_json(self.path, {**times, "replaces_in": len(older), "segments": segments})
        return times
