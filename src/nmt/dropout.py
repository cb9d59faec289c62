"""Dropout with masks from numpy's PCG64 on the CPU: the same distribution, several times cheaper.

torch's CPU generator makes a Bernoulli mask about as slowly as a matmul over the same rows
(bench/train_speed.py), so on the CPU dropout cost as much as the layer it follows. PCG64's raw
64-bit outputs, read as four 16-bit integers each, give a mask from a few bit operations:
an element is kept when its integer is at least round(p * 65536), so p is rounded to 1/65536,
and the kept ones are scaled by 65536 / (65536 - that), which keeps the expectation exact.
On a GPU torch's own kernel is fast and is used as it is.

The generator is one per process, as torch's is: training seeds it from the run's seed and
its rank (so ranks draw different masks) and saves its state in `last.pt` (so a resumed run
draws what an uninterrupted one would). nn.LSTM's dropout between layers is inside its fused
kernel and still draws from torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LEVELS = 65536  # a mask element is one 16-bit draw

_bits = np.random.PCG64(np.random.SeedSequence([0, 0]))
_use_torch = False


def seed(run_seed: int, rank: int = 0) -> None:
    """Start the mask stream of this run and rank."""
    global _bits
    _bits = np.random.PCG64(np.random.SeedSequence([run_seed, rank]))


def get_state() -> dict[str, Any]:
    """The generator's state: plain ints and strings, loadable with weights_only."""
    return dict(_bits.state)


def set_state(state: dict[str, Any]) -> None:
    _bits.state = state  # type: ignore[assignment]  # numpy checks the state it is given


@contextlib.contextmanager
def torch_masks() -> Iterator[None]:
    """Draw masks with torch's generator instead, as the seed did (benchmarks compare both)."""
    global _use_torch
    before, _use_torch = _use_torch, True
    try:
        yield
    finally:
        _use_torch = before


def scaled_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """0 where an element drops, 65536 / (65536 - round(p * 65536)) where it stays."""
    threshold = round(p * LEVELS)
    n = shape.numel()
    draws = _bits.random_raw((n + 3) // 4).view(np.uint16)[:n]
    keep = draws >= threshold
    mask = np.multiply(keep, np.float32(LEVELS / (LEVELS - threshold)), dtype=np.float32)
    return torch.from_numpy(mask).view(shape)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0:
        return x
    if _use_torch or x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    return x * scaled_mask(x.shape, p).to(x.dtype)


class Dropout(nn.Module):
    """`nn.Dropout` with the masks above."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
