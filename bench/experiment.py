"""Run one recipe as a DVC experiment of an architecture's train stage, score it on `val`, and
log it: a row in docs/experiments.md and every val score in bench/results/experiments/.

Only `val` is read (validation loss from training, BLEU from decoding `val` for every --beams
and --alphas pair, as bench/tune_decoding.py does), so a recipe is chosen without the test
sets; the chosen one then becomes params.yaml's default and `dvc repro` evaluates it once.

    python bench/experiment.py transformer -n warmup4k -S transformer.train.warmup=4000

The experiment runs in the workspace (its outputs stay there for tune_decoding); afterwards
params.yaml, dvc.lock and the stage's metrics, log and curves get their committed text back, and
the experiment stays in `dvc exp show` under its name (`dvc exp apply NAME` brings it back).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tune_decoding import tune

from nmt.config import available_archs
from nmt.io import write_json, write_text
from nmt.report import kept, minutes
from nmt.runtime import describe

LOG = Path("docs/experiments.md")
RESULTS = Path("bench/results/experiments")
END = "<!-- runs:end -->"  # new rows go above it


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def row(record: dict) -> str:
    """The experiment's line in the log's table."""
    train, best = record["train"], record["val"][0]
    machine = record["machine"]
    cpu = f"{machine['cpu']} ({', '.join(machine['flags'])})"
    return (
        f"| `{record['name']}` | `{record['command']}` | {train['epochs']} / {train['kept']} | "
        f"{minutes(record['seconds'])} | {cpu} | {train['valid_loss']:.3f} | "
        f"{best['bleu_tokenized']:.2f} | {best['bleu']:.2f} | {best['beam_size']}, "
        f"{best['length_penalty']} | `{record['commit']}` |"
    )


def append_row(line: str) -> None:
    text = LOG.read_text()
    if END not in text:
        sys.exit(f"error: {LOG} has no '{END}' line to add the row above; restore it")
    write_text(LOG, text.replace(END, f"{line}\n{END}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arch", choices=available_archs())
    parser.add_argument("-n", "--name", required=True, help="the experiment's name")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--beams", type=int, nargs="+", default=[5, 10])
    # Past 1.8, where the best subword Transformer rows peak, so a peak is seen as one.
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.6, 1.0, 1.4, 1.8, 2.2])
    args = parser.parse_args()
    # The experiment's text of these; the committed one comes back afterwards.
    restored = [
        "params.yaml",
        "dvc.lock",
        f"metrics/train_{args.arch}.json",
        f"logs/train_{args.arch}.json",
    ]
    if git("ls-files", curves := f"dvclive/{args.arch}"):  # committed curves, where there are
        restored.append(curves)
    if git("status", "--porcelain", *restored):
        sys.exit(f"error: {', '.join(restored)} have uncommitted changes; commit them first")
    if (RESULTS / f"{args.name}.json").exists():
        sys.exit(f"error: an experiment named {args.name!r} is logged already; choose another")
    command = ["dvc", "exp", "run", "-n", args.name]
    for setting in args.set_param:
        command += ["-S", setting]
    command.append(f"train@{args.arch}")
    commit = git("rev-parse", "--short", "HEAD").strip()  # the code the experiment runs
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    metrics = json.loads(Path(f"metrics/train_{args.arch}.json").read_text())
    record = {
        "name": args.name,
        "command": shlex.join(command),
        "commit": commit,
        "seconds": round(seconds, 1),
        "machine": describe(),
        "train": {
            "epochs": metrics["epochs"],
            "kept": kept(metrics),
            "valid_loss": metrics.get("averaged_valid_loss", metrics["best_valid_loss"]),
        },
        "val": tune(args.arch, args.beams, args.alphas, "bleu_tokenized"),
    }
    write_json(RESULTS / f"{args.name}.json", record)
    append_row(row(record))
    git("checkout", "HEAD", "--", *restored)  # not the index, where DVC staged its versions
    print(f"experiment: {args.name}: logged in {LOG} and {RESULTS / args.name}.json")


if __name__ == "__main__":
    main()
