"""The README's results tables, printed from what `dvc repro` wrote: metrics/train_<arch>.json,
metrics/eval_<arch>.json and metrics/repro_time.json, so that a reader can check every number.

    python bench/results_table.py [--test-set test_2016_flickr]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nmt.config import load_params

METRICS = Path("metrics")


def minutes(seconds: float) -> str:
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--test-set", default="test_2016_flickr")
    args = parser.parse_args()
    times = json.loads((METRICS / "repro_time.json").read_text())
    stages = times["stages"]
    names = list(load_params().archs)
    print(
        "| arch | parameters | test loss (PPL) | sacreBLEU cased greedy / beam | lowercased beam "
        "| tokenized greedy / beam | chrF beam | epochs run (kept) | train | evaluate |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arch in names:
        train = json.loads((METRICS / f"train_{arch}.json").read_text())
        result = json.loads((METRICS / f"eval_{arch}.json").read_text())[args.test_set]
        greedy, beam = result["greedy"], result["beam"]
        kept = train.get("averaged_epochs") and f"mean of last {train['averaged_epochs']}"
        print(
            f"| `{arch}` | {train['parameters']:,} | {result['loss']:.3f} ({result['ppl']:.2f}) "
            f"| {greedy['bleu']:.2f} / {beam['bleu']:.2f} | {beam['bleu_lowercase']:.2f} "
            f"| {greedy['bleu_tokenized']:.2f} / {beam['bleu_tokenized']:.2f} "
            f"| {beam['chrf']:.2f} | {train['epochs']} ({kept or train['best_epoch']}) "
            f"| {minutes(stages[f'train@{arch}'])} | {minutes(stages[f'evaluate@{arch}'])} |"
        )
    print(f"\ntotal: {minutes(times['total_seconds'])}, complete: {times.get('complete')}")
    first = json.loads((METRICS / f"eval_{names[0]}.json").read_text())
    others = [t for t in first if t not in (args.test_set, "signatures")]
    print("\n| arch | " + " | ".join(others) + " |")
    print("|---|" + "---:|" * len(others))
    for arch in names:
        result = json.loads((METRICS / f"eval_{arch}.json").read_text())
        cells = [
            f"{result[t]['ppl']:.2f} / {result[t]['beam']['bleu']:.2f} / "
            f"{result[t]['beam']['bleu_tokenized']:.2f}"
            for t in others
        ]
        print(f"| `{arch}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
