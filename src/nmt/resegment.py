"""Subword regularisation (Kudo 2018; BPE-dropout, Provilkov et al. 2020): every epoch reads
the training pairs in a segmentation sampled anew from the SentencePiece model, so a word is
seen spelt in many ways; validation, evaluation and translation keep the best segmentation.

The pairs are those numericalize kept (both sides at most `data.max_len` pieces in the best
segmentation), held as text in memory. A sampled side longer than that keeps its best
segmentation, so no sentence outgrows what the model reads. Each epoch's sample depends on
(seed, epoch) alone, so a resumed run reads what an uninterrupted one would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmt import NMTError
from nmt.batching import ParallelData
from nmt.ids import fits, kept_pairs
from nmt.tokenization import iter_pairs
from nmt.vocab import Vocabulary


class SampledSegmentations:
    def __init__(
        self,
        pairs: list[tuple[str, str]],
        vocabs: tuple[Vocabulary, Vocabulary],
        alpha: float,
        seed: int,
        max_len: int,
        reverse_src: bool = False,
    ):
        src_lines, trg_lines = (
            (list(side) for side in zip(*pairs, strict=True)) if pairs else ([], [])
        )
        best = vocabs[0].encode(src_lines), vocabs[1].encode(trg_lines)
        keep = kept_pairs(*best, max_len)  # as numericalize keeps them
        self.lines = [src_lines[i] for i in keep], [trg_lines[i] for i in keep]
        self.best = [best[0][i] for i in keep], [best[1][i] for i in keep]
        self.vocabs, self.alpha, self.seed = vocabs, alpha, seed
        self.max_len, self.reverse_src = max_len, reverse_src

    @classmethod
    def of_split(
        cls,
        raw: Path,
        split: str,
        langs: tuple[str, str],
        vocabs: tuple[Vocabulary, Vocabulary],
        alpha: float,
        seed: int,
        max_len: int,
        numericalized: ParallelData,
    ) -> SampledSegmentations:
        """The raw pairs of `split`, checked against what numericalize made of them."""
        sampled = cls(
            list(iter_pairs(raw, split, *langs)),
            vocabs,
            alpha,
            seed,
            max_len,
            numericalized.src.reverse,
        )
        lengths = np.array([[len(s), len(t)] for s, t in zip(*sampled.best, strict=True)])
        if lengths.shape != numericalized.lengths.shape or (lengths != numericalized.lengths).any():
            raise NMTError(
                f"{raw}/{split}.* and the numericalized {split} split differ: "
                "rerun the data stages (dvc repro numericalize)"
            )
        return sampled

    def __len__(self) -> int:
        return len(self.lines[0])

    def epoch(self, epoch: int) -> ParallelData:
        """The training pairs of `epoch` (from 0), each side in a freshly sampled segmentation."""
        sides = []
        for side, (vocab, lines, best) in enumerate(
            zip(self.vocabs, self.lines, self.best, strict=True)
        ):
            seed = int(np.random.SeedSequence([self.seed, epoch, side]).generate_state(1)[0])
            sampled = vocab.sample(lines, self.alpha, seed)
            sides.append(
                [s if fits(s, self.max_len) else b for s, b in zip(sampled, best, strict=True)]
            )
        return ParallelData(sides[0], sides[1], self.reverse_src)
