"""Vocabularies: specials first, then tokens by descending frequency, ties broken alphabetically."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from nmt import EOS_ID, SOS_ID, SPECIALS, UNK_ID, MissingInput, NMTError
from nmt.io import write_parquet


def build_vocab(sentences: Iterable[Iterable[str]], min_freq: int) -> pd.DataFrame:
    """Rows in id order: `token` and its training-set `freq` (0 for the specials)."""
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = sorted(
        (t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
        key=lambda t: (-counts[t], t),
    )
    return pd.DataFrame(
        {"token": [*SPECIALS, *kept], "freq": [0] * len(SPECIALS) + [counts[t] for t in kept]}
    )


def save_vocab(path: Path, vocab: pd.DataFrame) -> None:
    write_parquet(path, vocab)


def load_vocab(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingInput(path)
    tokens = pd.read_parquet(path)["token"].tolist()
    if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
        raise NMTError(f"{path} does not start with the specials {', '.join(SPECIALS)}")
    return tokens


def vocab_hash(tokens: list[str]) -> str:
    """Identifies a vocabulary, so a checkpoint is never used with ids it was not trained on."""
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()[:16]


def load_vocab_pair(
    vocab_dir: Path, src_lang: str, trg_lang: str
) -> tuple[tuple[list[str], list[str]], tuple[str, str]]:
    """The source and target vocabularies and their hashes."""
    vocabs = (
        load_vocab(vocab_dir / f"{src_lang}.parquet"),
        load_vocab(vocab_dir / f"{trg_lang}.parquet"),
    )
    return vocabs, (vocab_hash(vocabs[0]), vocab_hash(vocabs[1]))


def numericalize(sentences: Iterable[list[str]], tokens: list[str]) -> list[np.ndarray]:
    """Token ids framed by <sos> and <eos>; unknown tokens map to <unk>."""
    stoi = {token: i for i, token in enumerate(tokens)}
    return [
        np.array([SOS_ID, *(stoi.get(t, UNK_ID) for t in sentence), EOS_ID], dtype=np.int32)
        for sentence in sentences
    ]
