"""Peak memory and wall time of the data stages and of the first training batches, as the
corpus grows: does a WMT-size corpus (4.5M pairs) fit in bounded memory?

For each size N, a synthetic corpus of N training pairs is made from Multi30k's (copies
after the first swap one random pair of neighbouring words per line, so that lines differ;
no download) beside Multi30k's real validation split. A fresh project folder then runs the
real stages on it with a SentencePiece vocabulary (the one a corpus this size would use):
download (from the local folder), tokenize, vocab, numericalize, and train@transformer for
`--batches` batches with 1 and with 2 data-parallel processes. Each stage runs in a fresh
process tree whose largest process's peak resident set size is reported (`ru_maxrss` of
the waited-for children: under torchrun, the largest rank).

    python bench/corpus_scale.py [--pairs 29000 1000000 4500000] [--batches 20]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from nmt.download import MIRROR_ENV
from nmt.io import write_json
from nmt.runtime import describe

ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val")
LANGS = ("de", "en")


def synthesize(mirror: Path, pairs: int, dest: Path, seed: int = 0) -> Path:
    """`pairs` training pairs cycled from Multi30k's and the real validation split, as plain
    files with a `sha256sum` list, the way the download stage reads a corpus folder."""
    dest.mkdir(parents=True, exist_ok=True)
    for lang in LANGS:
        with gzip.open(mirror / f"train.{lang}.gz", "rt", encoding="utf-8") as f:
            lines = f.read().splitlines()
        rng = np.random.default_rng([seed, LANGS.index(lang)])
        with (dest / f"train.{lang}").open("w", encoding="utf-8") as out:
            for i, line in enumerate(itertools.islice(itertools.cycle(lines), pairs)):
                words = line.split()
                if i >= len(lines) and len(words) > 1:
                    j = int(rng.integers(len(words) - 1))
                    words[j], words[j + 1] = words[j + 1], words[j]
                out.write(" ".join(words) + "\n")
        with gzip.open(mirror / f"val.{lang}.gz", "rb") as f:
            (dest / f"val.{lang}").write_bytes(f.read())
    sums = []
    for path in sorted(dest.glob("*.??")):
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
        sums.append(f"{digest.hexdigest()}  {path.name}\n")
    (dest / "SHA256SUMS").write_text("".join(sums))
    return dest


def project(corpus: Path, folder: Path, batches: int) -> Path:
    """A project folder whose params read `corpus` and train the Transformer on subwords."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(
        url=str(corpus), checksums=str(corpus / "SHA256SUMS"), file_name="{split}.{lang}"
    )
    params["data"]["splits"] = list(SPLITS)
    params["evaluate"]["test_sets"] = ["val"]  # no stage here evaluates; the params must hold
    params["archs"] = {"transformer": "subwords"}
    params["vocabs"] = {"subwords": params["vocabs"]["subwords"]}
    params["train"].update(epochs=1, max_batches=batches)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (folder / "stages").exists():
        (folder / "stages").symlink_to(ROOT / "stages")
    return folder


STAGES = {  # what is measured: the stage script and its argument, and train.processes
    "download": (["download_data.py"], None),
    "tokenize": (["tokenize_corpus.py"], None),
    "vocab": (["build_vocab.py", "subwords"], None),
    "numericalize": (["numericalize.py", "subwords"], None),
    "train, 1 process": (["train.py", "transformer"], 1),
    "train, 2 processes": (["train.py", "transformer"], 2),
}


def run_measured(command: list[str], cwd: Path) -> dict[str, float]:
    """Run `command` in a fresh process (this one's child) and report its tree's peak RSS;
    the download reads the corpus folder in params.yaml, never a mirror."""
    child = [sys.executable, __file__, "--child", str(cwd), "--", *command]
    env = {**os.environ, MIRROR_ENV: ""}
    result = subprocess.run(child, capture_output=True, text=True, env=env)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def child(cwd: Path, command: list[str]) -> None:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode:
        sys.stderr.write(result.stderr.decode(errors="replace"))
        sys.exit(result.returncode)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_rss_mib": peak_kib / 1024}))


def measure(pairs: int, mirror: Path, work: Path, batches: int) -> dict[str, dict[str, float]]:
    corpus = synthesize(mirror, pairs, work / "corpus")
    folder = project(corpus, work / "project", batches)
    row = {}
    for stage, ((script, *args), processes) in STAGES.items():
        if processes:
            params = yaml.safe_load((folder / "params.yaml").read_text())
            params["train"]["processes"] = processes
            (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        command = [sys.executable, f"stages/{script}", *args]
        row[stage] = run_measured(command, folder)
        print(
            f"{pairs:>9,} pairs  {stage:<19} peak RSS {row[stage]['peak_rss_mib']:6.0f} MiB"
            f"  {row[stage]['seconds']:7.1f} s",
            flush=True,
        )
    return row


def linear_fit(sizes: list[int], seconds: list[float]) -> dict[str, float]:
    """seconds ≈ intercept + slope · pairs, least squares; R² says how straight the line is."""
    x, y = np.array(sizes, dtype=float), np.array(seconds)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    r2 = 1 - float((residual**2).sum() / ((y - y.mean()) ** 2).sum())
    return {"seconds_per_million_pairs": slope * 1e6, "intercept_seconds": intercept, "r2": r2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mirror",
        type=Path,
        default=Path(os.environ.get("MULTI30K_MIRROR", ROOT.parent / "shared" / "multi30k")),
    )
    parser.add_argument("--pairs", type=int, nargs="+", default=[29_000, 1_000_000, 4_500_000])
    parser.add_argument("--batches", type=int, default=20, help="training batches per run")
    parser.add_argument("--out", type=Path, default=Path("bench/results/corpus_scale.json"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args, command = parser.parse_known_args()
    if args.child:
        child(args.child, command[1:])
        return
    sizes = {}
    for pairs in args.pairs:
        with tempfile.TemporaryDirectory() as tmp:
            sizes[str(pairs)] = measure(pairs, args.mirror, Path(tmp), args.batches)
    data_stages = ["download", "tokenize", "vocab", "numericalize"]
    fits = (
        {
            stage: linear_fit(args.pairs, [sizes[str(n)][stage]["seconds"] for n in args.pairs])
            for stage in data_stages
        }
        if len(args.pairs) > 2
        else {}
    )
    for stage, fit in fits.items():
        print(
            f"{stage:<13} {fit['seconds_per_million_pairs']:7.1f} s per 1M pairs "
            f"+ {fit['intercept_seconds']:5.1f} s, R² {fit['r2']:.4f}"
        )
    write_json(
        args.out,
        {"machine": describe(), "batches": args.batches, "pairs": sizes, "fits": fits},
    )


if __name__ == "__main__":
    main()
