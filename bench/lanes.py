"""Lanes against one stage after another: the same reproduction at a shortened recipe, run by
a plain `dvc repro` and by `python -m nmt.lanes` (`make repro`), each in a temporary copy of
the project, on this machine, one run each. The data stages run once, before any is timed.

One after another runs twice: at the lanes' thread count (its models must be the same bytes
as the lanes': a model does not depend on what trains beside it), and with every core to each
stage (`train.threads` and `evaluate.threads` set to the cores), the way to use the cores
without lanes, which the speed-up is reported against as well.

The recipe is cut so that the stages keep their relative costs: every architecture trains
`--batches` batches an epoch for `--epochs-scale` of its recipe's epochs (at least one; an
average of the last epochs no longer than that) and is evaluated on the first test set.
`-S key=value` sets any other param, as `dvc exp run -S` does. Writes each run's wall time
and stage times, the ratios, the CPU, the threads and the lanes at once to --out, and whether
the runs at one thread count gave the same model bytes.

    python bench/lanes.py [--batches 40] [--epochs-scale 0.25] [-S key=value ...]
        [--out bench/results/lanes.json]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from nmt.config import parse_params
from nmt.io import write_json
from nmt.lanes import lane_threads, pipeline, split
from nmt.runtime import available_cores, describe

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("dvc.yaml", ".gitignore", ".dvcignore", "stages", "src")


def shortened(params: dict[str, Any], batches: int, scale: float) -> dict[str, Any]:
    """The recipe with `batches` batches an epoch and `scale` of each architecture's epochs,
    evaluated on the first test set."""
    params["train"]["max_batches"] = batches
    params["evaluate"]["test_sets"] = params["evaluate"]["test_sets"][:1]
    for arch in params["archs"]:
        own = params[arch]["train"]
        epochs = max(1, round(own.get("epochs", params["train"]["epochs"]) * scale))
        average = min(own.get("average", params["train"]["average"]), epochs)
        own |= {"epochs": epochs, "average": average}
    return params


def set_param(params: dict[str, Any], setting: str) -> None:
    """`key.path=value` (a leading `+` allowed, as dvc's -S takes it), the value as YAML."""
    key, _, value = setting.lstrip("+").partition("=")
    *parents, leaf = key.split(".")
    section = params
    for name in parents:
        section = section.setdefault(name, {})
    section[leaf] = yaml.safe_load(value)


def call(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a command to its end, its output to a log beside the project; its wall time."""
    start = time.time()
    with (cwd.parent / f"{cwd.name}.log").open("a") as log:
        done = subprocess.run(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed in {cwd}: see {cwd.parent / cwd.name}.log")
    return time.time() - start


def models(project: Path) -> dict[str, str]:
    """The md5 of every model file the run wrote."""
    files = sorted((project / "models").glob("*/model.safetensors"))
    return {f.parent.name: hashlib.md5(f.read_bytes()).hexdigest() for f in files}


def new_project(folder: Path, params: dict[str, Any], env: dict[str, str]) -> None:
    """A git + DVC repo of this project's pipeline with `params`, its data stages run."""
    folder.mkdir()
    for name in COPIED:
        copy_path = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy_path(ROOT / name, folder / name)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        call(command, folder, env)
    call(["git", "commit", "-qm", "shortened recipe"], folder, env)
    data, _, _ = split(pipeline(folder), tuple(params["archs"]))
    call(["dvc", "repro", *data], folder, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40, help="train.max_batches")
    parser.add_argument("--epochs-scale", type=float, default=0.25)
    parser.add_argument("-S", dest="settings", action="append", default=[], help="key=value")
    parser.add_argument("--out", type=Path, default=Path("bench/results/lanes.json"))
    args = parser.parse_args()
    params = shortened(
        yaml.safe_load((ROOT / "params.yaml").read_text()), args.batches, args.epochs_scale
    )
    for setting in args.settings:
        set_param(params, setting)
    threads, cores = lane_threads(parse_params(params)), available_cores()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": "src",  # each copy runs its own nmt
        "DVC_NO_ANALYTICS": "1",
    }
    mirror = env.get("MULTI30K_MIRROR", "")
    if mirror and Path(mirror).is_dir():  # a folder named from here: the copies run elsewhere
        env["MULTI30K_MIRROR"] = str(Path(mirror).resolve())
    for role in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{role}_NAME", "bench")
        env.setdefault(f"GIT_{role}_EMAIL", "bench@localhost")
    tmp = Path(tempfile.mkdtemp(prefix="lanes-bench-"))  # kept if a run fails, for its log
    serial, lanes = tmp / "serial", tmp / "lanes"
    wide = tmp / "serial-wide" if cores > threads else None  # else the same run as serial
    runs = [p for p in (serial, wide, lanes) if p]
    new_project(serial, params, env)
    for folder in runs[1:]:  # before any training: no run cache to reuse
        shutil.copytree(serial, folder, symlinks=True)
    if wide:
        every_core = copy.deepcopy(params)
        for section in ("train", "evaluate"):
            every_core[section]["threads"] = cores
        (wide / "params.yaml").write_text(yaml.safe_dump(every_core, sort_keys=False))
    timer = [sys.executable, str(ROOT / "bench/repro_time.py"), "--out", "times.json"]
    one_by_one = call(timer, serial, env)
    one_by_one_wide = call(timer, wide, env) if wide else None
    # the lanes start longest first by the 1-thread run's stage times, as `make repro` does by
    # the committed bench/results/repro_time.json (the stages it reruns replace them there)
    shutil.copy(serial / "times.json", lanes / "times.json")
    side_by_side = call([sys.executable, "-m", "nmt.lanes", "--out", "times.json"], lanes, env)
    times = {p.name: json.loads((p / "times.json").read_text()) for p in runs}
    same = models(serial) == models(lanes)
    result = {
        "machine": {**describe(), "torch_threads": threads, "cores": cores},
        "recipe": {"batches": args.batches, "epochs_scale": args.epochs_scale},
        "settings": args.settings,
        "lanes_at_once": max(1, cores // threads),
        "one_after_another_seconds": round(one_by_one, 1),
        "one_after_another_every_core_seconds": one_by_one_wide and round(one_by_one_wide, 1),
        "lanes_seconds": round(side_by_side, 1),
        "speedup": round(one_by_one / side_by_side, 3),
        "speedup_over_every_core": one_by_one_wide and round(one_by_one_wide / side_by_side, 3),
        "same_models": same,
        "models": models(lanes),
        "stages": {name: t["stages"] for name, t in times.items()},
    }
    shutil.rmtree(tmp)
    write_json(args.out, result)
    wide_line = (
        f", one after another on all {cores} cores {one_by_one_wide:.0f} s "
        f"({result['speedup_over_every_core']:.2f}x)"
        if one_by_one_wide
        else ""
    )
    print(
        f"one after another {one_by_one:.0f} s, {result['lanes_at_once']} lanes at once "
        f"{side_by_side:.0f} s: {result['speedup']:.2f}x on {cores} cores at {threads} "
        f"thread(s){wide_line}; models {'identical' if same else 'DIFFERENT'}; in {args.out}"
    )


if __name__ == "__main__":
    main()
