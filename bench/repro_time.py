"""Time one `dvc repro` (arguments pass through): echo its output, and write each stage's start,
end and wall time and the total to the timing file, with the CPU it ran on (`nmt.timing`).
`make repro` times its lanes the same way (`nmt.lanes`); this times a plain run, one stage
after another, such as a rerun of a few stages.

The file is rewritten as the run goes (`"complete": false` until dvc ends well). `--resume`
adds the next run as a new segment, with its own CPU description: stage times and the total
are summed over the segments, so the time lost to an interruption stays counted. `--replace`
adds a rerun of stages that were timed already (after a lost cache, say) and drops their
earlier times, so each stage's time is that of the run behind its entry in dvc.lock; such a
rerun cut off and continued with `--resume` goes on dropping them. Ctrl-C or SIGTERM stops dvc
(its stage keeps the files it finished) and keeps the run so far as an unfinished segment.

    python bench/repro_time.py [--out bench/results/repro_time.json] [--resume | --replace]
        [-- dvc repro args]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.lane_run import STOP_GRACE, signal_group
from nmt.lanes import lane_threads
from nmt.runtime import describe
from nmt.timing import REPRO_TIME, SAVE_EVERY, Clock, TimesFile, segment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPRO_TIME)
    added = parser.add_mutually_exclusive_group()
    added.add_argument("--resume", action="store_true", help="add to the run in --out")
    added.add_argument(
        "--replace", action="store_true", help="add to --out, dropping the rerun stages' times"
    )
    parser.add_argument("dvc_args", nargs="*", help="passed to dvc repro")
    args = parser.parse_args()
    if args.resume:
        times_file = TimesFile.resuming(args.out)
    elif args.replace:
        times_file = TimesFile.replacing(args.out)
    else:
        times_file = TimesFile(args.out, [])
    machine = {**describe(), "torch_threads": lane_threads(load_params())}  # what the stages use
    start = saved = time.time()
    clock = Clock()

    def save(now: float, complete: bool) -> dict[str, Any]:
        """The timing file with this run as it stands at `now`."""
        return times_file.save(segment(machine, start, now, [clock]), complete)

    with subprocess.Popen(
        ["dvc", "repro", *args.dvc_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # a group of its own: a stop reaches dvc and its stage alike
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                print(line, end="", flush=True)
                clock.read(line.rstrip("\n"), time.time())
                if time.time() - saved > SAVE_EVERY:
                    saved = time.time()
                    save(saved, complete=False)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM, to this process only
            signal_group(process.pid, signal.SIGTERM)  # the stage turns it into its own stop
            try:
                last, _ = process.communicate(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                last, _ = process.communicate()
            print(last, end="", flush=True)  # the stage's own last lines
            stopped = time.time()
            clock.stop(stopped)
            save(stopped, complete=False)
            raise
    end = time.time()
    clock.stop(end)
    times = save(end, complete=process.returncode == 0)
    if process.returncode:  # kept as an unfinished segment, for --resume
        sys.exit(process.returncode)
    print(f"repro_time: {times['total_seconds']:.0f} s in all; per stage in {args.out}")


if __name__ == "__main__":
    run_stage(main, "the run so far is kept in the timing file; continue it with --resume")
