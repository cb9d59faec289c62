"""Length-bucketed, padded batches of token ids, in the manner of torchtext's BucketIterator.

Each epoch shuffles the examples with a seed derived from (seed, epoch), sorts them by length
inside pools of `batch_size * pool_factor` examples, cuts the pools into batches and shuffles
the batches. Sorting keeps padding low; the pools and the shuffles keep batches varied.
Tensors are sequence-first: `[seq_len, batch]`, as the recurrent models consume them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nmt import PAD_ID, MissingInput, NMTError
from nmt.ids import SIDES, Sequences, TokenFile, ids_files


@dataclass
class Batch:
    src: torch.Tensor  # [src_len, B] ids, padded with <pad>, longest source first
    src_len: torch.Tensor  # [B] true source lengths, on the CPU as packing requires
    trg: torch.Tensor  # [trg_len, B] ids, <sos> ... <eos> then <pad>
    index: np.ndarray  # [B] the examples' positions in their dataset

    @property
    def n_trg_tokens(self) -> int:
        """Target tokens the model predicts: everything after <sos> that is not padding."""
        return int((self.trg[1:] != PAD_ID).sum())

    def to(self, device: torch.device) -> Batch:
        """The ids on `device`; the source lengths stay on the CPU."""
        return Batch(self.src.to(device), self.src_len, self.trg.to(device), self.index)


def pad(sequences: list[np.ndarray]) -> torch.Tensor:
    out = np.full((max(len(s) for s in sequences), len(sequences)), PAD_ID, dtype=np.int64)
    for column, seq in enumerate(sequences):
        out[: len(seq), column] = seq
    return torch.from_numpy(out)


class ParallelData:
    """Numericalized sentence pairs; the source may be read reversed (Sutskever et al.).
    Batches are formed from the lengths alone; `collate` reads the sentences it pads."""

    def __init__(
        self,
        src: Sequence[np.ndarray] | Sequences,
        trg: Sequence[np.ndarray] | Sequences,
        reverse_src: bool = False,
    ):
        if len(src) != len(trg):
            raise NMTError(f"{len(src)} source but {len(trg)} target sentences")
        source = src if isinstance(src, Sequences) else Sequences.of(src)
        self.src = Sequences(source.tokens, source.offsets, reverse_src)
        self.trg = trg if isinstance(trg, Sequences) else Sequences.of(trg)
        self.lengths = np.stack([self.src.lengths, self.trg.lengths], axis=1)

    @classmethod
    def load(cls, folder: Path, split: str, reverse_src: bool = False) -> ParallelData:
        """A split that numericalize wrote into `folder`; its tokens stay on disk until read."""
        files = ids_files(folder, split)
        for path in files.values():
            if not path.is_file():
                raise MissingInput(path)
        offsets = np.load(files["offsets"])
        src, trg = (TokenFile(files[side]) for side in SIDES)
        return cls(Sequences(src, offsets[:, 0]), Sequences(trg, offsets[:, 1]), reverse_src)

    def __len__(self) -> int:
        return len(self.src)

    def batch_indices(
        self,
        batch_size: int,
        pool_factor: int = 100,
        seed: int | None = None,
        epoch: int = 0,
        max_tokens: int = 0,
    ) -> list[np.ndarray]:
        """Index groups for one epoch; `seed=None` gives a fixed, fully length-sorted order.
        With `max_tokens`, a batch holds as many sentences as fit that many padded tokens on
        its longer side (at least one), instead of `batch_size`."""
        rng = None if seed is None else np.random.default_rng([seed, epoch])
        order = np.arange(len(self)) if rng is None else rng.permutation(len(self))
        pool = max(len(self), 1) if rng is None else batch_size * pool_factor
        groups = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.lexsort((self.lengths[chunk, 1], self.lengths[chunk, 0]))]
            if max_tokens:
                groups += self._token_batches(chunk, max_tokens)
            else:
                groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        if rng is not None:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        return groups

    def _token_batches(self, chunk: np.ndarray, max_tokens: int) -> list[np.ndarray]:
        longest = self.lengths[chunk].max(axis=1)
        groups, start, width = [], 0, 0
        for end in range(len(chunk)):
            width = max(width, int(longest[end]))
            if (end - start + 1) * width > max_tokens and end > start:
                groups.append(chunk[start:end])
                start, width = end, int(longest[end])
        return [*groups, chunk[start:]]

    def target_tokens(self, index: np.ndarray) -> int:
        """What `Batch.n_trg_tokens` of these examples will be, without padding them."""
        return int(self.lengths[index, 1].sum()) - len(index)

    def collate(self, index: np.ndarray) -> Batch:
        index = index[np.argsort(-self.lengths[index, 0], kind="stable")]
        return Batch(
            src=pad([self.src[i] for i in index]),
            src_len=torch.from_numpy(self.lengths[index, 0].copy()),
            trg=pad([self.trg[i] for i in index]),
            index=index,
        )

    def padding_ratio(self, groups: list[np.ndarray]) -> float:
        """Share of padding among all positions of the padded source and target tensors."""
        real = padded = 0
        for group in groups:
            lengths = self.lengths[group]
            real += int(lengths.sum())
            padded += int(lengths.max(axis=0).sum()) * len(group)
        return 1 - real / padded


def join_small_batches(groups: list[np.ndarray], minimum: int) -> list[np.ndarray]:
    """The batches, each with at least `minimum` examples: a smaller one joins the one before
    (the first, the one after). Data-parallel ranks split every batch; each needs a share."""
    joined: list[np.ndarray] = []
    for group in groups:
        if len(group) < minimum and joined:
            joined[-1] = np.concatenate([joined[-1], group])
        else:
            joined.append(group)
    if len(joined) > 1 and len(joined[0]) < minimum:
        joined[:2] = [np.concatenate(joined[:2])]
    if joined and len(joined[0]) < minimum:
        raise NMTError(f"{len(joined[0])} training examples cannot be split {minimum} ways")
    return joined
