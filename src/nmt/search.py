"""What a translation search is asked for and what it gives back, shared by both engines
(ours in `nmt.decoding`, CTranslate2's in `nmt.export`) and by evaluation and the command,
which import neither engine to say it. The defaults are params.yaml's (`EvaluateParams`)."""

from __future__ import annotations

import math
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
        """The one check of a search's settings, for params.yaml, the command and the server."""
        for name in ("beam_size", "max_len", "batch_size"):
            if getattr(self, name) < 1:
                raise NMTError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.length_penalty < math.inf:  # NaN fails too
            raise NMTError(f"length_penalty must be a number >= 0, got {self.length_penalty}")
        if not 1 <= self.n_best <= self.beam_size:
            raise NMTError(
                f"n_best must be between 1 and beam_size ({self.beam_size}), got {self.n_best}"
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
