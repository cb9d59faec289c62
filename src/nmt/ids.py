"""Numericalized corpora: text as token ids, made and stored a chunk at a time.

A split of vocabulary <name> is three files in data/ids/<name>/: `<split>.src.npy` and
`<split>.trg.npy` hold every sentence's ids end to end (framed by <sos>/<eos>, little-endian
int32), and `<split>.offsets.npy` where each sentence starts, both sides side by side
([n + 1, 2] int64). Batches are formed from the offsets alone; readers read only the
sentences they pad (`TokenFile`), so no process holds a WMT-size corpus in memory.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nmt import UNK_ID, MissingInput
from nmt.io import atomic_path

if TYPE_CHECKING:
    from nmt.vocab import Vocabulary

IDS_DTYPE = np.dtype("<i4")  # token ids on disk
SIDES = ("src", "trg")


def fits(ids: np.ndarray, max_len: int) -> bool:
    """Whether a framed sentence holds at most `max_len` tokens (<sos>/<eos> not counted)."""
    return len(ids) - 2 <= max_len


def kept_pairs(src: Sequence[np.ndarray], trg: Sequence[np.ndarray], max_len: int) -> list[int]:
    """The positions of the pairs whose sides both fit `max_len`: a rare runaway line would
    otherwise set a whole batch's length."""
    pairs = zip(src, trg, strict=True)
    return [i for i, (s, t) in enumerate(pairs) if fits(s, max_len) and fits(t, max_len)]


def drop_long_pairs(
    src: list[np.ndarray], trg: list[np.ndarray], max_len: int
) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The pairs that fit `max_len` (`kept_pairs`), and how many were dropped."""
    keep = kept_pairs(src, trg, max_len)
    return [src[i] for i in keep], [trg[i] for i in keep], len(src) - len(keep)


class TokenFile:
    """The token ids of an `.npy` file that numericalize wrote, read a slice at a time with
    `pread`: a process reads only the sentences it pads, and what it read is not counted as
    its memory (a memory map would be: the kernel may map megabytes of page cache for each
    sentence touched)."""

    def __init__(self, path: Path):
        self.file = path.open("rb", buffering=0)
        try:
            version = np.lib.format.read_magic(self.file)
            read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_{version[1]}")
            shape, _, dtype = read_header(self.file)
        except (ValueError, AttributeError):
            raise MissingInput(path, "is not a token array written by numericalize") from None
        if dtype != IDS_DTYPE or len(shape) != 1:
            raise MissingInput(path, f"holds {dtype} {shape}, not the token ids of numericalize")
        self.size, self.start = shape[0], self.file.tell()

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, where: slice) -> np.ndarray:
        width = IDS_DTYPE.itemsize
        data = os.pread(
            self.file.fileno(), (where.stop - where.start) * width, self.start + where.start * width
        )
        return np.frombuffer(data, IDS_DTYPE)


def backwards(ids: np.ndarray) -> np.ndarray:
    """A framed sentence's words backwards, <sos> and <eos> kept in place."""
    return np.concatenate([ids[:1], ids[-2:0:-1], ids[-1:]])


class Sequences:
    """Sentences of token ids stored end to end, as numericalize writes them: sentence i is
    `tokens[offsets[i]:offsets[i + 1]]`, from an array or a `TokenFile`. `reverse` reads each
    sentence's words backwards, <sos> and <eos> kept in place (Sutskever et al. reverse the
    source)."""

    def __init__(self, tokens: np.ndarray | TokenFile, offsets: np.ndarray, reverse: bool = False):
        self.tokens, self.offsets, self.reverse = tokens, offsets, reverse

    @classmethod
    def of(cls, sentences: Sequence[np.ndarray]) -> Sequences:
        lengths = [len(s) for s in sentences]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        tokens = np.concatenate(sentences) if lengths else np.zeros(0)
        return cls(tokens.astype(IDS_DTYPE), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        ids = self.tokens[slice(int(self.offsets[i]), int(self.offsets[i + 1]))]
        return backwards(ids) if self.reverse else ids

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def ids_files(folder: Path, split: str) -> dict[str, Path]:
    """A numericalized split: each side's tokens end to end, and both sides' offsets."""
    return {
        **{side: folder / f"{split}.{side}.npy" for side in SIDES},
        "offsets": folder / f"{split}.offsets.npy",
    }


def write_ids(
    folder: Path, split: str, chunks: Iterable[tuple[list[np.ndarray], list[np.ndarray]]]
) -> np.ndarray:
    """Write a split given as chunks of (source, target) id arrays, holding one chunk in
    memory at a time: the tokens go to temporary files as they come and become `.npy` arrays
    at the end, when their length is known. The split's [n, 2] sentence lengths."""
    files, chunk_lengths = ids_files(folder, split), [np.zeros((0, 2), np.int64)]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder) as src, tempfile.TemporaryFile(dir=folder) as trg:
        for src_ids, trg_ids in chunks:
            for stream, sentences in ((src, src_ids), (trg, trg_ids)):
                if sentences:
                    stream.write(np.concatenate(sentences).astype(IDS_DTYPE).tobytes())
            pairs = zip(src_ids, trg_ids, strict=True)
            chunk_lengths.append(np.array([[len(s), len(t)] for s, t in pairs]).reshape(-1, 2))
        lengths = np.concatenate(chunk_lengths).astype(np.int64)
        for column, (side, stream) in enumerate((("src", src), ("trg", trg))):
            stream.seek(0)
            with atomic_path(files[side]) as tmp, tmp.open("wb") as out:
                header = {"descr": IDS_DTYPE.str, "fortran_order": False}
                np.lib.format.write_array_header_1_0(
                    out, {**header, "shape": (int(lengths[:, column].sum()),)}
                )
                shutil.copyfileobj(stream, out, 1 << 20)
    offsets = np.concatenate([np.zeros((1, 2), np.int64), np.cumsum(lengths, axis=0)])
    with atomic_path(files["offsets"]) as tmp, tmp.open("wb") as out:
        np.save(out, offsets)
    return lengths


@dataclass
class SplitCounts:
    """What `numericalize` saw of a split: pairs kept and dropped, tokens (<sos>/<eos>
    included) and unknown tokens per side."""

    pairs: int = 0
    dropped: int = 0
    src_tokens: int = 0
    trg_tokens: int = 0
    src_unknown: int = 0
    trg_unknown: int = 0

    def add(self, src: list[np.ndarray], trg: list[np.ndarray], dropped: int) -> None:
        self.pairs, self.dropped = self.pairs + len(src), self.dropped + dropped
        self.src_tokens += sum(map(len, src))
        self.trg_tokens += sum(map(len, trg))
        self.src_unknown += sum(int((s == UNK_ID).sum()) for s in src)
        self.trg_unknown += sum(int((t == UNK_ID).sum()) for t in trg)


def numericalize(
    pairs: Iterator[tuple[str, str]],
    vocabs: tuple[Vocabulary, Vocabulary],
    counts: SplitCounts,
    max_len: int = 0,
    chunk: int = 10_000,
) -> Iterator[tuple[list[np.ndarray], list[np.ndarray]]]:
    """Sentence pairs as ids, `chunk` pairs at a time, so memory holds one chunk whatever the
    corpus size; with `max_len`, pairs with a longer side are dropped. Tallies in `counts`."""
    while batch := list(itertools.islice(pairs, chunk)):
        src_lines, trg_lines = zip(*batch, strict=True)
        src, trg = vocabs[0].encode(list(src_lines)), vocabs[1].encode(list(trg_lines))
        dropped = 0
        if max_len:
            src, trg, dropped = drop_long_pairs(src, trg, max_len)
        counts.add(src, trg, dropped)
        yield src, trg
