"""Peak memory of the tokenize stage: streaming (the stage) against a whole split in memory.

Each measurement runs in a fresh process and reports its peak resident set size; `imports`
is a process that only loads the same libraries, the floor under both. Corpora: the real
Multi30k training split, and synthetic ones of `--pairs` pairs made by repeating it.

    python bench/tokenize_memory.py [--pairs 200000 1000000] [--whole-up-to 200000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from nmt.io import write_json, write_parquet, write_parquet_chunks
from nmt.tokenization import iter_lines, tokenized_chunks


def tokenize_whole(raw_dir: Path, split: str) -> pd.DataFrame:
    """The baseline: a whole split's tokens in one frame, as the pipeline once held them."""
    return pd.concat(list(tokenized_chunks(raw_dir, split, "de", "en")), ignore_index=True)


MODES = ("imports", "stream", "whole")


def measure_here(mode: str, raw_dir: Path, out: Path) -> dict[str, float]:
    """Tokenize split `train` of `raw_dir` one way, in this process; its peak RSS and time."""
    start = time.perf_counter()
    if mode == "stream":
        write_parquet_chunks(out, tokenized_chunks(raw_dir, "train", "de", "en"))
    elif mode == "whole":
        write_parquet(out, tokenize_whole(raw_dir, "train"))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"peak_rss_mib": peak_kib / 1024, "seconds": time.perf_counter() - start}


def measure(mode: str, raw_dir: Path, out: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, str(raw_dir), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def repeat_corpus(raw_dir: Path, pairs: int, dest: Path) -> Path:
    """`pairs` pairs made by cycling through the training split of `raw_dir`."""
    dest.mkdir(parents=True, exist_ok=True)
    for lang in ("de", "en"):
        lines = itertools.islice(
            itertools.cycle(list(iter_lines(raw_dir / f"train.{lang}"))), pairs
        )
        with (dest / f"train.{lang}").open("w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", type=Path, default=Path("data/raw"))
    parser.add_argument("--pairs", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument(
        "--whole-up-to",
        type=int,
        default=200_000,
        help="largest corpus to tokenize whole (its memory grows with the corpus)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/tokenize_memory.json"))
    parser.add_argument("--child", nargs=3, metavar=("MODE", "RAW", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, raw, out = args.child
        print(json.dumps(measure_here(mode, Path(raw), Path(out))))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        real = sum(1 for _ in iter_lines(args.raw / "train.de"))
        corpora = {real: args.raw}
        for pairs in args.pairs:
            corpora[pairs] = repeat_corpus(args.raw, pairs, Path(tmp) / f"synthetic_{pairs}")
        for pairs, raw_dir in corpora.items():
            row = {}
            for mode in MODES:
                if mode == "whole" and pairs > args.whole_up_to:
                    continue
                row[mode] = measure(mode, raw_dir, Path(tmp) / f"{mode}.parquet")
                print(
                    f"{pairs:>9,} pairs  {mode:<7}  peak RSS {row[mode]['peak_rss_mib']:7.0f} MiB"
                    f"  {row[mode]['seconds']:6.1f} s",
                    flush=True,
                )
            results[str(pairs)] = row
    write_json(args.out, {"pairs": results})


if __name__ == "__main__":
    main()
