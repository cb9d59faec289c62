"""Several recipes of one architecture trained side by side on one machine, each in a folder of
its own, then scored on `val` as bench/experiment.py scores a row. No DVC: for a machine that
has torch but not the pipeline's tools (a lent GPU). Each row is params.yaml with its own
settings, trained by the train stage's own code (`nmt.run.TrainingRun`).

    python bench/search_rows.py transformer --out /tmp/rows --deadline 540 \\
        --row default --row rdrop3 transformer.train.rdrop_alpha=3

Rows run at once, each one process. A row that its epochs so far say cannot finish (and be
decoded) before --deadline seconds is stopped, the last --row first, which leaves its share
of the machine to the rows before it; at the deadline every row still running is stopped.
Only `val` is read. --out gets each row's folder (params, log, epoch records, scores) and
rows.json, every row's record.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from tune_decoding import tune

from nmt.config import available_archs, load_params
from nmt.io import write_json
from nmt.run import TrainingRun
from nmt.runtime import Ranks, describe, resolve_device
from nmt.settings import train_settings

ROOT = Path(__file__).resolve().parent.parent
PROGRESS, SCORES = "epochs.jsonl", "row.json"


def machine() -> dict[str, object]:
    about = describe()
    if torch.cuda.is_available():
        about["gpu"] = torch.cuda.get_device_name()
    return about


def train_and_score(arch: str, beams: list[int], alphas: list[float]) -> None:
    """In a row's folder: train, keep the model, score it on val for every beam and alpha."""
    start = time.time()
    params = load_params()
    run = TrainingRun.start(train_settings(params, arch), resolve_device(params.device), Ranks())

    def progress(record: dict[str, float]) -> None:
        with open(PROGRESS, "a") as log:
            log.write(json.dumps(record) + "\n")

    summary = run.trainer.fit(on_epoch=progress)
    run.finish(summary)
    trained = time.time() - start
    val = tune(arch, beams, alphas, "bleu_tokenized") if beams else []
    write_json(
        Path(SCORES),
        {
            "train": summary.metrics(),
            "train_seconds": round(trained),
            "seconds": round(time.time() - start),
            "machine": machine(),
            "val": val,
        },
    )


def with_settings(base: dict, settings: list[str]) -> dict:
    """params.yaml's contents with KEY=VALUE settings (dotted keys, YAML values) applied."""
    params = copy.deepcopy(base)
    for setting in settings:
        key, _, value = setting.partition("=")
        *path, last = key.split(".")
        section = params
        for part in path:
            section = section.setdefault(part, {})
        section[last] = yaml.safe_load(value)
    return params


def epochs_done(folder: Path) -> list[dict]:
    path = folder / PROGRESS
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def projected_end(folder: Path, epochs: int, decode_seconds: float) -> float | None:
    """When a row will have finished, from its last three epochs (after the first, which pays
    for warm-up); None for a row with fewer than three epochs yet."""
    done = epochs_done(folder)
    if len(done) < 3:
        return None
    recent = [r["epoch_seconds"] for r in done[1:][-3:]]
    return time.time() + (epochs - len(done)) * sum(recent) / len(recent) + decode_seconds


def summary(record: dict) -> str:
    if "train" not in record:
        return f"{record['name']}: stopped after {len(record['epochs'])} epochs"
    train = record["train"]
    loss = train.get("averaged_valid_loss", train["best_valid_loss"])
    line = f"{record['name']}: {train['epochs']} epochs in {record['train_seconds']} s"
    line += f", val loss {loss:.3f}"
    if not record["val"]:
        return line
    best = record["val"][0]
    return (
        f"{line}, val BLEU {best['bleu_tokenized']:.2f} (beam {best['beam_size']}, "
        f"alpha {best['length_penalty']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arch", choices=available_archs())
    parser.add_argument("--row", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--deadline", type=float, default=540, help="seconds from the start")
    parser.add_argument(
        "--shed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop the last rows when the rows share the machine too slowly to finish",
    )
    parser.add_argument("--decode-seconds", type=float, default=60, help="allowed for val")
    parser.add_argument("--beams", type=int, nargs="*", default=[10], help="none: no decoding")
    parser.add_argument("--alphas", type=float, nargs="+", default=[1.0, 1.4, 1.8, 2.2])
    parser.add_argument("--in-row", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_row:
        return train_and_score(args.arch, args.beams, args.alphas)
    if not args.row or not args.out:
        parser.error("give --out and at least one --row")
    start = time.time()
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    paths = [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}
    rows = {}
    for name, *settings in args.row:
        folder = args.out / name
        folder.mkdir(parents=True)
        params = with_settings(base, settings)
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        (folder / "data").symlink_to(ROOT / "data")
        command = [sys.executable, __file__, args.arch, "--in-row", "--beams"]
        command += [str(b) for b in args.beams] + ["--alphas"] + [str(a) for a in args.alphas]
        with open(folder / "log.txt", "w") as log:
            process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=log)
        epochs = load_params(folder / "params.yaml").train_params(args.arch).epochs
        rows[name] = {"settings": settings, "process": process, "epochs": epochs}
    print(f"search_rows: {len(rows)} rows started: {', '.join(rows)}", flush=True)
    deadline, wait_for = start + args.deadline, {}  # epochs each row must reach before a stop
    while any(row["process"].poll() is None for row in rows.values()):
        time.sleep(5)
        running = [name for name, row in rows.items() if row["process"].poll() is None]
        done = {name: len(epochs_done(args.out / name)) for name in running}
        training = [name for name in running if done[name] < rows[name]["epochs"]]
        if time.time() > deadline:
            stop = running
        elif not args.shed or any(done[name] < wait_for.get(name, 0) for name in training):
            continue  # the last stop's effect is not measured yet
        else:
            ends = [
                projected_end(args.out / name, rows[name]["epochs"], args.decode_seconds)
                for name in running
            ]
            stop = training[-1:] if any(end and end > deadline for end in ends) else []
        for name in stop:
            rows[name]["process"].kill()
            rows[name]["stopped"] = round(time.time() - start)
            print(f"search_rows: {name} stopped after {done[name]} epochs", flush=True)
        wait_for = {name: count + 3 for name, count in done.items()} if stop else wait_for
    records = []
    for name, row in rows.items():
        folder = args.out / name
        record = {"name": name, "settings": row["settings"], "exit": row["process"].returncode}
        if (folder / SCORES).exists() and "stopped" not in row:
            record |= json.loads((folder / SCORES).read_text())
        else:
            record["stopped_after_seconds"] = row.get("stopped")
        record["epochs"] = epochs_done(folder)
        records.append(record)
        print(f"search_rows: {summary(record)}", flush=True)
    seconds = round(time.time() - start)
    write_json(args.out / "rows.json", {"arch": args.arch, "seconds": seconds, "rows": records})


if __name__ == "__main__":
    main()
