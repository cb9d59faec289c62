"""What a translation search is asked for and what it gives back, shared by both engines
(ours in `nmt.decoding`, CTranslate2's in `nmt.export`) and by evaluation and the command,
which import neither engine to say it. The defaults are params.yaml's (`EvaluateParams`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from nmt import NMTError

if TYPE_CHECKING:  # this leaf imports no torch: the params module reads its defaults
    import torch


@dataclass(frozen=True)
class SearchSettings:
    beam_size: int  # 1 is greedy search
    length_penalty: float  # GNMT's alpha; 0 ranks beams by log-probability alone
    max_len: int  # output tokens at most, <eos> included
    batch_size: int  # sentences decoded together
    n_best: int = 1  # hypotheses kept per sentence, best first

    def __post_init__(self) -> None:
        if min(self.beam_size, self.max_len, self.batch_size) < 1 or self.length_penalty < 0:
            raise NMTError("beam size, max length and batch size must be >= 1, length penalty >= 0")
        if not 1 <= self.n_best <= self.beam_size:
            raise NMTError(
                f"n-best must be between 1 and the beam size ({self.beam_size}), got {self.n_best}"
            )


@dataclass
class Hypothesis:
    tokens: list[int]  # without <sos> and <eos>
    score: float  # sum of log-probabilities of the tokens and the final <eos>
    attention: torch.Tensor | None  # [output steps, source length], for attention models


def fit_source(ids: np.ndarray, limit: int | None) -> np.ndarray:
    """A framed source cut to at most `limit` positions: <sos>, its first tokens, <eos>."""
    if limit is None or len(ids) <= limit:
        return ids
    return np.concatenate([ids[: limit - 1], ids[-1:]])
