"""What pinning MKL's and oneDNN's code paths costs, and whether it makes the numbers agree
across CPUs: each architecture's train stage, run for a few batches and one validation pass in
a temporary copy of the project, under each setting of the environment variables that pin
them, in a rotating order. The data comes from this project's data/ (run the data stages
first).

    python bench/cpu_paths.py [--batches 12] [--rounds 2] [--archs lstm gru attention transformer]
        [--out bench/results/cpu_paths.json]

Per architecture and setting: the model file's md5 and the validation loss (the same on two
machines under one setting means that setting makes them agree: compare the JSON files of two
machines), and the train stage's wall time, the smallest over the rounds, with its ratio to
the unpinned run's. The CPU's model and flags are written with them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from lanes import shortened  # beside this script

from nmt.io import write_json
from nmt.runtime import describe

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {  # the environment each run adds
    "default": {},
    "MKL_CBWR=AVX2": {"MKL_CBWR": "AVX2"},
    "ONEDNN_MAX_CPU_ISA=AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "both": {"MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def project(folder: Path, batches: int) -> None:
    """The stages and code of this project, the recipe cut to `batches` batches of one epoch,
    the data/ folders of this one linked in."""
    for name in ("stages", "src"):
        shutil.copytree(ROOT / name, folder / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params = shortened(params, batches, scale=0.0)  # one epoch each, nothing averaged
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (folder / "data").mkdir()
    for name in ("raw", "tokens", "vocab", "ids"):
        (folder / "data" / name).symlink_to(ROOT / "data" / name)


@dataclass
class Runs:
    """The runs of one architecture under one setting: what they wrote, how long each took."""

    md5: str
    valid_loss: float
    seconds: list[float] = field(default_factory=list)


def run(folder: Path, arch: str, extra: dict[str, str]) -> tuple[Runs, float]:
    """One train stage from scratch under `extra`: what it wrote, and its wall time."""
    shutil.rmtree(folder / "checkpoints" / arch, ignore_errors=True)
    env = os.environ | {"PYTHONPATH": "src"} | extra
    command = [sys.executable, "stages/train.py", arch]
    start = time.perf_counter()
    subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    model = (folder / "models" / arch / "model.safetensors").read_bytes()
    metrics = json.loads((folder / "metrics" / f"train_{arch}.json").read_text(encoding="utf-8"))
    return Runs(hashlib.md5(model).hexdigest(), metrics["best_valid_loss"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--archs", nargs="+", default=["lstm", "gru", "attention", "transformer"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/cpu_paths.json"))
    args = parser.parse_args()
    names = list(SETTINGS)
    results: dict[str, dict[str, dict[str, object]]] = {}
    with tempfile.TemporaryDirectory(prefix="cpu-paths-") as tmp:
        folder = Path(tmp)
        project(folder, args.batches)
        for arch in args.archs:
            subprocess.run(
                [sys.executable, "stages/settings.py", arch],
                cwd=folder,
                env=os.environ | {"PYTHONPATH": "src"},
                check=True,
                capture_output=True,
            )
            rows: dict[str, Runs] = {}
            for round_ in range(args.rounds):
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    got, seconds = run(folder, arch, SETTINGS[name])
                    row = rows.setdefault(name, got)
                    if (row.md5, row.valid_loss) != (got.md5, got.valid_loss):
                        sys.exit(f"{arch} under {name}: two runs differ; this machine is not exact")
                    row.seconds.append(round(seconds, 2))
            base = rows["default"]
            results[arch] = {}
            for name, row in rows.items():
                ratio = min(row.seconds) / min(base.seconds)
                print(
                    f"{arch:12s} {name:24s} {min(row.seconds):6.1f} s x{ratio:.3f} "
                    f"valid loss {row.valid_loss:.7f} {row.md5}"
                )
                results[arch][name] = asdict(row) | {
                    "time_ratio": round(ratio, 3),
                    "same_as_default": row.md5 == base.md5,
                }
    write_json(
        args.out,
        {"machine": describe(), "batches": args.batches, "rounds": args.rounds, "runs": results},
    )


if __name__ == "__main__":
    main()
