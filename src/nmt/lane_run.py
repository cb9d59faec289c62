"""Running lanes: one `dvc repro` process each, in a process group of its own, its output
to the lane's log and a line to stdout as each of its stages starts and ends, every stage's
start and end to the timing file, and a stop that reaches every process of every lane
(`nmt.lanes` plans them)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nmt.paths import LOGS
from nmt.timing import SAVE_EVERY, Clock, Event, TimesFile, segment

LANE_LOGS = LOGS / "lanes"  # gitignored; logs/train_<arch>.json beside it are DVC's
STOP_GRACE = 30.0  # seconds a stopped lane has to end before it is killed


@dataclass(frozen=True)
class Lane:
    """One `dvc repro` process and the stages it is there to run."""

    name: str
    stages: tuple[str, ...]  # in the order they run
    args: tuple[str, ...]  # of `dvc repro`

    @property
    def log(self) -> Path:
        return LANE_LOGS / f"{self.name}.log"


def duration(seconds: float) -> str:
    """3 s, 4 min 10 s, 1 h 40 min."""
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def event_line(lane: Lane, event: Event, ended: str = "done") -> str | None:
    """The line a stage's event prints; a skipped stage only where the lane is there to run
    it (a lane's dvc skips the stages upstream of its own). `ended`: done, failed or stopped."""
    if event.kind == "started":
        return f"[{lane.name}] {event.stage} started"
    if event.kind == "skipped":
        return f"[{lane.name}] {event.stage} up to date" if event.stage in lane.stages else None
    return f"[{lane.name}] {event.stage} {ended} {'in' if ended == 'done' else 'after'} " + (
        duration(event.seconds)
    )


def failure_line(lane: Lane, stage: str | None, error: str | None, code: int) -> str:
    """One line for a failed lane: the stage, the error it printed (else dvc's), and the log
    with the rest."""
    what = stage or f"lane {lane.name} (dvc exit status {code}, before any stage ran)"
    why = f": {error.removeprefix('error: ').removeprefix('ERROR: ')}" if error else ""
    return f"{what} failed{why}; its lane's output: {lane.log}"


@dataclass
class Runner:
    """Runs lanes' dvc processes, each in a process group of its own, prints their stages'
    lines and keeps the timing file."""

    times: TimesFile
    machine: dict[str, object]  # nmt.runtime.describe, with the lanes' threads
    width: int  # lanes at once, as the timing file records
    start: float = field(default_factory=time.time)
    clocks: list[Clock] = field(default_factory=list)
    running: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stopping: bool = False
    saved: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)

    def phase(self, lanes: Sequence[Lane], width: int) -> None:
        """Run the lanes, `width` at once, each starting as one ends, in the order given."""
        queue = deque(lanes)

        def work() -> None:
            while True:
                with self.lock:
                    if self.stopping or not queue:
                        return
                    lane = queue.popleft()
                self.run(lane)

        at_once = min(width, len(lanes))
        started = [threading.Thread(target=work, daemon=True) for _ in range(at_once)]
        self.threads += started
        for thread in started:
            thread.start()
        for thread in started:
            while thread.is_alive():
                thread.join(1.0)
                if time.time() - self.saved > SAVE_EVERY:
                    self.save(complete=False)

    def run(self, lane: Lane) -> None:
        """One lane's dvc, its output to the lane's log and its stages' lines to stdout."""
        clock, error = Clock(lane.name), None
        lane.log.parent.mkdir(parents=True, exist_ok=True)
        with lane.log.open("w", encoding="utf-8") as log:
            with self.lock:
                if self.stopping:
                    return
                try:
                    process = self.running[lane.name] = subprocess.Popen(
                        ["dvc", "--wait-for-lock", *lane.args],
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        errors="replace",
                        bufsize=1,
                        start_new_session=True,  # a group of its own: a stop reaches its stage
                    )
                except OSError as err:  # no dvc on PATH, say
                    self.failures.append(f"lane {lane.name} could not start dvc: {err}")
                    return
                self.clocks.append(clock)
            with process:
                assert process.stdout is not None
                for line in process.stdout:
                    log.write(line)
                    log.flush()
                    line = line.rstrip("\n")
                    if line.startswith("error: ") or (not error and line.startswith("ERROR: ")):
                        error = line  # the stage's own line, else dvc's
                    with self.lock:
                        self.report(lane, clock.read(line, time.time()))
        with self.lock:
            del self.running[lane.name]
            code, stage = process.returncode, clock.current
            ended = "done" if code == 0 else "stopped" if self.stopping else "failed"
            self.report(lane, clock.stop(time.time()), ended)
            if ended == "failed":
                self.failures.append(failure_line(lane, stage, error, code))

    def report(self, lane: Lane, events: list[Event], ended: str = "done") -> None:
        """Print the events' lines; the timing file follows each."""
        for event in events:
            if line := event_line(lane, event, ended):
                print(line, flush=True)
        if events:
            self.save(complete=False)

    def save(self, complete: bool) -> None:
        """Rewrite the timing file with this run's segment as it stands."""
        with self.lock:
            now = time.time()
            run = segment(self.machine, self.start, now, self.clocks, self.width)
            self.times.save(run, complete)
            self.saved = now

    def stop(self) -> None:
        """End every lane, one after another: SIGTERM to a dvc's process group (the stage
        turns it into its own interruption), the next group once it has ended, and SIGKILL to
        what is left after STOP_GRACE seconds. One at a time since the stages' last steps
        share a file: dvclive's end removes .dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED (a signal
        for VS Code, one per workspace) after checking it is there, so two ending at once can
        both find it and the second fails to remove it, a traceback for its interrupted line."""
        with self.lock:
            self.stopping = True
            groups = [process.pid for process in self.running.values()]
        deadline = time.time() + STOP_GRACE
        for group in groups:
            signal_group(group, signal.SIGTERM)
            while group_alive(group) and time.time() < deadline:
                time.sleep(0.1)
        for group in groups:
            signal_group(group, signal.SIGKILL)
        for thread in self.threads:
            thread.join()


def signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended already
        os.killpg(group, signum)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
