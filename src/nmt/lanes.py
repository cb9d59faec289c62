"""`make repro`: the pipeline with each architecture's stages in a lane of their own, as many
lanes at once as the cores allow at the configured threads.

    python -m nmt.lanes [--out bench/results/repro_time.json] [--archs gru attention]

First the data phase, one `dvc repro --single-item` of the stages a lane's stage depends on
(download, tokenize, vocab@, numericalize@, settings@: a bad param stops the run before any
training) that `dvc status` finds stale, and those downstream of them; one up to date is not
checked again, which would lock its outputs for writing while another runner's lanes read
them.
Then the lanes: an architecture's `train@<arch>` and the stages named after it that depend on
it (evaluate@, heatmaps@, export@), run by a `dvc repro --single-item` of their own. DVC
lets such processes share a workspace: it releases the repository's lock while a stage's
command runs (each waits for it otherwise, `--wait-for-lock`); single items, since checking
an upstream stage locks its outputs for writing while other lanes read them. Lanes start
longest first, by their stages' times in the timing file, else in the order of the full
reproduction. Last, a plain `dvc repro`: `curves`, and a check that nothing else is stale
(skipped when `--archs` names only some architectures: a part of the reproduction that fits
the time one has).

Each stage's start and end is one line, prefixed with its lane; each lane's whole output goes
to logs/lanes/<lane>.log, and the timing file gets every stage's start and end (`nmt.timing`;
after an unfinished run, this one continues it). A failed lane lets the others finish; the run
then ends with one line naming the stage and its log. Ctrl-C or SIGTERM stops every lane (the
process group of each dvc), and the next run resumes: training from checkpoints/<arch>/last.pt.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

from nmt import NMTError
from nmt.cli import run_stage
from nmt.config import Params, load_params
from nmt.lane_run import LANE_LOGS, Lane, Runner, duration
from nmt.runtime import available_cores, check_threads, describe
from nmt.timing import REPRO_TIME, TimesFile, recorded

LONGEST_FIRST = ("lstm", "attention", "gru", "transformer")  # the full reproduction's order
DATA, FINAL = "data", "final"  # the phases before and after the lanes


@dataclass(frozen=True)
class Plan:
    """The lanes of a run: the data phase, the architectures' lanes, and the rest."""

    data: Lane | None  # none when every data stage is up to date
    lanes: tuple[Lane, ...]  # in the order they start
    final: Lane | None  # none when the lanes are only some of the architectures


def split(
    upstream: Mapping[str, Collection[str]], archs: Sequence[str]
) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """The pipeline's stages (each with the stages it depends on) as the data phase, each
    architecture's lane, and the rest, each in an order dvc can run it."""
    order = list(TopologicalSorter(upstream).static_order())  # dependencies first
    below: dict[str, set[str]] = {}  # every stage a stage depends on, directly or not
    for stage in order:
        below[stage] = {d for dep in upstream.get(stage, ()) for d in (dep, *below[dep])}
    lanes = {}
    for arch in archs:
        train = f"train@{arch}"
        if train not in below:
            raise NMTError(f"dvc.yaml has no stage {train} for the architecture {arch}")
        lanes[arch] = [
            s for s in order if s == train or (s.endswith(f"@{arch}") and train in below[s])
        ]
    in_lanes = {s for stages in lanes.values() for s in stages}
    data = [s for s in order if s not in in_lanes and any(s in below[t] for t in in_lanes)]
    rest = [s for s in order if s not in in_lanes and s not in data]
    return data, lanes, rest


def longest_first(lanes: Mapping[str, Sequence[str]], seconds: Mapping[str, float]) -> list[str]:
    """The lanes timed before by their stages' seconds, longest first; then the others in the
    order of the full reproduction, and as given."""
    cost = {arch: sum(seconds.get(s, 0.0) for s in stages) for arch, stages in lanes.items()}
    timed = sorted((a for a in lanes if cost[a]), key=lambda a: -cost[a])
    rank = {arch: i for i, arch in enumerate(LONGEST_FIRST)}
    return timed + sorted((a for a in lanes if not cost[a]), key=lambda a: rank.get(a, len(rank)))


def needed(
    stages: Sequence[str], upstream: Mapping[str, Collection[str]], stale: Collection[str]
) -> list[str]:
    """Of `stages` (dependencies first), the stale ones and those that depend on one."""
    run: set[str] = set()
    for stage in stages:
        if stage in stale or run & set(upstream.get(stage, ())):
            run.add(stage)
    return [s for s in stages if s in run]


def plan(
    upstream: Mapping[str, Collection[str]],
    archs: Sequence[str],
    seconds: Mapping[str, float],
    stale: Collection[str] | None = None,
) -> Plan:
    """What `make repro` runs, given the pipeline, the stage times of an earlier run and the
    stale stages (None: all of them)."""
    data, lanes, rest = split(upstream, archs)
    data = data if stale is None else needed(data, upstream, stale)
    every_arch = {s.removeprefix("train@") for s in upstream if s.startswith("train@")}
    return Plan(
        data=Lane(DATA, tuple(data), ("repro", "--single-item", *data)) if data else None,
        lanes=tuple(
            Lane(arch, tuple(lanes[arch]), ("repro", "--single-item", *lanes[arch]))
            for arch in longest_first(lanes, seconds)
        ),
        final=Lane(FINAL, tuple(rest), ("repro",)) if every_arch <= set(archs) else None,
    )


def lane_threads(params: Params) -> int:
    """The cores one lane keeps busy: its training's threads (times its processes) or its
    decoding's; more threads than this machine has cores are refused in one line."""
    widest = 1
    for arch in params.archs:
        train, evaluate = params.train_params(arch), params.evaluate_params(arch)
        check_threads(train.threads, params.key(arch, "train", "threads"))
        check_threads(evaluate.threads, params.key(arch, "evaluate", "threads"))
        widest = max(widest, train.threads * train.processes, evaluate.threads)
    return widest


def pipeline(root: Path = Path(".")) -> dict[str, list[str]]:
    """Each stage of the project's dvc.yaml, with the stages it depends on (DVC's graph)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph
        return {s.name: [d.name for d in graph.successors(s)] for s in graph}


def stale_of(stages: Sequence[str], root: Path = Path(".")) -> set[str]:
    """Those of `stages` that `dvc status` finds changed (their deps, params or outputs)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return set(repo.status(targets=list(stages)))


def earlier_seconds(path: Path) -> dict[str, float]:
    """Each stage's seconds in the timing file, if there is one."""
    return recorded(path)["stages"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPRO_TIME, help="the timing file")
    parser.add_argument(
        "--archs", nargs="+", metavar="ARCH", help="only these architectures' lanes, no final phase"
    )
    args = parser.parse_args()
    params = load_params()
    threads, cores = lane_threads(params), available_cores()
    width = max(1, cores // threads)
    upstream, archs = pipeline(), tuple(args.archs or params.archs)
    stale = stale_of(split(upstream, archs)[0])
    todo = plan(upstream, archs, earlier_seconds(args.out), stale)
    phases = [([todo.data], 1)] if todo.data else []
    phases.append((list(todo.lanes), width))
    if todo.final:
        phases.append(([todo.final], 1))
    runner = Runner(TimesFile.continuing(args.out), {**describe(), "torch_threads": threads}, width)
    print(
        f"lanes: {', '.join(lane.name for lane in todo.lanes)}, {width} at once ({cores} cores, "
        f"{threads} thread{'s' * (threads != 1)} each); each lane's output in {LANE_LOGS}/",
        flush=True,
    )
    complete = False
    try:
        for lanes, at_once in phases:
            runner.phase(lanes, at_once)
            if runner.failures:
                raise NMTError("; ".join(runner.failures))
        complete = True
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # let the stop finish
            signal.signal(signum, signal.SIG_IGN)
        runner.stop()
        runner.save(complete)
    print(f"lanes: done in {duration(time.time() - runner.start)}; stage times in {args.out}")


if __name__ == "__main__":
    run_stage(main, "every lane stopped; run `make repro` again to continue where they stopped")
