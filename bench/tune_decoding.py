"""Beam size and length penalty for one trained architecture, chosen on the validation set.

Decodes `val` with the pipeline's model (the package models/<arch>/) for every pair of
--beams and --alphas and prints the scores of each, best first by the metric --by. Test sets
are never read, so the choice does not leak into the reported results; put the winner in
params.yaml (`<arch>.evaluate.beam_size`, `<arch>.evaluate.length_penalty`: decoding settings
of one architecture, which never retrain it).

    python bench/tune_decoding.py transformer --beams 1 5 10 --alphas 0 0.6 1.0
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from nmt.config import available_archs, load_params
from nmt.evaluation import Scorer
from nmt.io import write_json
from nmt.measure import Split, decode_and_score, pipeline_translator
from nmt.settings import evaluate_settings


def tune(arch: str, beams: list[int], alphas: list[float], by: str) -> list[dict]:
    """The val scores of the pipeline's model for every beam and length penalty, best first."""
    settings = evaluate_settings(load_params(), arch)
    translator = pipeline_translator(settings)
    split = Split.load(settings, "val")
    score = Scorer(split.references, settings.langs[1])
    rows = []
    for beam, alpha in itertools.product(beams, alphas):
        if beam == 1 and alpha != alphas[0]:
            continue  # greedy search has no length penalty
        _, scores, _ = decode_and_score(
            translator, split, settings.evaluate.search(beam, alpha), score
        )
        rows.append({"beam_size": beam, "length_penalty": alpha, **scores})
        print(
            f"beam {beam:>2} alpha {alpha:.2f}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in scores.items())
        )
    return sorted(rows, key=lambda row: -row[by])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("arch", choices=available_archs())
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.6, 1.0])
    parser.add_argument("--by", default="bleu_tokenized", help="the score to rank by")
    parser.add_argument("--out", type=Path, help="all scores as JSON")
    args = parser.parse_args()
    rows = tune(args.arch, args.beams, args.alphas, args.by)
    best = rows[0]
    print(
        f"best on val by {args.by}: beam {best['beam_size']}, length penalty "
        f"{best['length_penalty']} ({best[args.by]:.2f})"
    )
    if args.out:
        write_json(args.out, {"arch": args.arch, "by": args.by, "val": rows})


if __name__ == "__main__":
    main()
