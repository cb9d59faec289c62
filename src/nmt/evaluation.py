"""Scores of translations against references, and whether two systems really differ.

Every score is computed on detokenized text against the raw reference lines, so word and
subword models are scored alike:

- `bleu`: sacreBLEU, cased (the standard; a lowercase model loses its capitals here).
- `bleu_lowercase`: sacreBLEU, lowercased.
- `chrf`: sacreBLEU's chrF, cased.
- `bleu_tokenized`: corpus BLEU on the lowercased spaCy tokens of hypothesis and reference,
  the number the classic PyTorch tutorials report (sacreBLEU with tokenize="none").

`compare` runs sacreBLEU's paired bootstrap resampling (Koehn, 2004) on two systems'
translations of one test set: the p-value says how often a difference this large would
appear by chance if the systems were equally good.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from unittest import mock

from sacrebleu.metrics.base import Metric
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF
from sacrebleu.significance import PairedTest, Result

from nmt import MissingInput, NMTError
from nmt.cli import run_stage
from nmt.tokenization import read_lines, tokenize, tokenizer


def metrics(
    references: list[str] | None = None, tokenized_references: list[str] | None = None
) -> dict[str, Metric]:
    """The metrics, each with its references cached when given."""
    text = None if references is None else [references]
    tokens = None if tokenized_references is None else [tokenized_references]
    return {
        "bleu": BLEU(references=text),
        "bleu_lowercase": BLEU(lowercase=True, references=text),
        "chrf": CHRF(references=text),
        "bleu_tokenized": BLEU(tokenize="none", force=True, references=tokens),  # on purpose
    }


def tokenized(lines: list[str], lang: str) -> list[str]:
    """Lowercased spaCy tokens joined by spaces: the text `bleu_tokenized` scores."""
    return [" ".join(t.lower() for t in tokens) for tokens in tokenize(lines, lang)]


def _check_lengths(hypotheses: list[str], references: list[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")


class Scorer:
    """Scores of detokenized translations against one set of references, and the sacreBLEU
    signatures that say how each was computed. The references are tokenized and read into
    sacreBLEU's statistics once, however many systems (greedy, beam, settings) are scored."""

    def __init__(self, references: list[str], lang: str):
        self.references, self.lang = references, lang
        self.metrics = metrics(references, tokenized(references, lang))

    def __call__(self, hypotheses: list[str]) -> tuple[dict[str, float], dict[str, str]]:
        _check_lengths(hypotheses, self.references)
        tokens = tokenized(hypotheses, self.lang)
        scores, signatures = {}, {}
        for name, metric in self.metrics.items():
            system = tokens if name == "bleu_tokenized" else hypotheses
            scores[name] = metric.corpus_score(system, None).score
            signatures[name] = str(metric.get_signature())
        return scores, signatures


def score_translations(
    hypotheses: list[str], references: list[str], lang: str
) -> tuple[dict[str, float], dict[str, str]]:
    """The scores of one system (`Scorer`, for several against the same references)."""
    return Scorer(references, lang)(hypotheses)


@dataclass(frozen=True)
class Comparison:
    metric: str
    baseline: float
    system: float
    system_ci: float  # half the width of the system's 95% bootstrap confidence interval
    p_value: float


def paired_bootstrap(
    baseline: list[str],
    system: list[str],
    references: list[str],
    lang: str,
    samples: int = 1000,
    seed: int = 12345,
) -> list[Comparison]:
    """sacreBLEU's paired bootstrap test of `system` against `baseline`, for every metric."""
    _check_lengths(baseline, references)
    _check_lengths(system, references)
    logging.getLogger("sacrebleu").setLevel(logging.WARNING)  # its progress lines
    comparisons = []
    for name, metric in metrics().items():
        texts = (baseline, system, references)
        if name == "bleu_tokenized":
            texts = (
                tokenized(baseline, lang),
                tokenized(system, lang),
                tokenized(references, lang),
            )
        with mock.patch.dict(os.environ, {"SACREBLEU_SEED": str(seed)}):  # read only there
            test = PairedTest(
                [("baseline", texts[0]), ("system", texts[1])],
                {name: metric},
                [texts[2]],
                test_type="bs",
                n_samples=samples,
            )
        _, results = test()
        scored = next(iter(v for k, v in results.items() if k != "System"))  # the one metric's
        base, other = (cast(Result, result) for result in scored)
        assert other.ci is not None and other.p_value is not None  # a bootstrap test sets both
        comparisons.append(Comparison(name, base.score, other.score, other.ci, other.p_value))
    return comparisons


def read_translations(path: Path) -> list[str]:
    """A system's output lines; an empty line is an empty translation, not an error."""
    if not path.is_file():
        raise MissingInput(path)
    try:
        return path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise NMTError(f"{path} is not valid UTF-8") from None


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Is one system's translation of a test set better than another's? "
        "Scores both and runs sacreBLEU's paired bootstrap test."
    )
    parser.add_argument("baseline", type=Path, help="translations, one sentence a line")
    parser.add_argument("system", type=Path, help="translations of the same sentences")
    parser.add_argument("reference", type=Path, help="reference translations, e.g. data/raw/…")
    parser.add_argument("--lang", default="en", help="the references' language (tokenizer)")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()
    if args.samples < 1:
        raise NMTError("--samples must be >= 1")
    for path in (args.baseline, args.system, args.reference):
        if path.is_dir():
            raise NMTError(f"{path} is a folder; name a file")
    try:
        tokenizer(args.lang)  # bleu_tokenized's
    except ImportError:
        raise NMTError(
            f"--lang {args.lang!r} is no language spaCy tokenizes; give a code such as en or de"
        ) from None
    baseline, system = read_translations(args.baseline), read_translations(args.system)
    references = read_lines(args.reference)
    for lines, path in ((baseline, args.baseline), (system, args.system)):
        if len(lines) != len(references):
            raise NMTError(f"{path} has {len(lines)} lines, the reference {len(references)}")
    print(f"{'metric':<16} {'baseline':>9} {'system':>9} {'95% CI':>8} {'p':>7}")
    for c in paired_bootstrap(baseline, system, references, args.lang, args.samples):
        print(
            f"{c.metric:<16} {c.baseline:9.2f} {c.system:9.2f} {'±' + f'{c.system_ci:.2f}':>8} "
            f"{c.p_value:7.4f}"
        )


def cli() -> None:
    run_stage(main, "nothing was written")
