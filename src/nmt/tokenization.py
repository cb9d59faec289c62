"""Read raw parallel text and tokenize it with spaCy's rule-based tokenizers.

`spacy.blank(lang)` needs no model download and reproduces the classic Multi30k vocabularies
(lowercased after tokenization, since spaCy's exceptions are case-sensitive).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

from nmt import MissingInput, NMTError

if TYPE_CHECKING:
    from spacy.tokenizer import Tokenizer


def iter_lines(path: Path) -> Iterator[str]:
    """The stripped lines of a UTF-8 file, read one at a time; a blank line is an error, since
    it breaks alignment."""
    if not path.is_file():
        raise MissingInput(path)
    number = 0
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise NMTError(f"{path} line {number} is not valid UTF-8") from None
            if not line:
                raise NMTError(f"{path} line {number} is blank; every line must hold one sentence")
            yield line
    if number == 0:
        raise NMTError(f"{path} is empty")


def read_lines(path: Path) -> list[str]:
    return list(iter_lines(path))


def iter_pairs(
    raw_dir: Path, split: str, src_lang: str, trg_lang: str
) -> Iterator[tuple[str, str]]:
    """The sentence pairs of a split, one at a time, checking that both sides align."""
    paths = raw_dir / f"{split}.{src_lang}", raw_dir / f"{split}.{trg_lang}"
    src, trg = iter_lines(paths[0]), iter_lines(paths[1])
    for count, pair in enumerate(itertools.zip_longest(src, trg)):
        if None in pair:
            more = [sum(1 for _ in side) + 1 for side in (src, trg)]  # the rest, then this one
            lengths = [count + (more[i] if pair[i] is not None else 0) for i in (0, 1)]
            raise NMTError(
                f"split {split!r} is misaligned: {lengths[0]} {src_lang} lines "
                f"but {lengths[1]} {trg_lang} lines"
            )
        yield pair


@functools.cache
def tokenizer(lang: str) -> Tokenizer:
    import spacy  # here: subword vocabularies, and so their models, never load it

    return spacy.blank(lang).tokenizer


def tokenize(lines: Iterable[str], lang: str) -> list[list[str]]:
    return [[token.text for token in doc] for doc in tokenizer(lang).pipe(lines, batch_size=1024)]


# Where the tokenizer split off punctuation and clitics, join them back (English).
_ATTACH_LEFT = re.compile(r" (?=[.,!?;:%)\]}]|'s\b|'re\b|'ve\b|'m\b|'ll\b|'d\b|n't\b)")
_ATTACH_RIGHT = re.compile(r"(?<=[(\[{$]) ")


def detokenize(tokens: list[str]) -> str:
    """Text from tokens, with spaces removed where the tokenizer had split without one."""
    text = " ".join(tokens)
    return _ATTACH_RIGHT.sub("", _ATTACH_LEFT.sub("", text))


class TokenTable:
    """The tokenize stage's output for a split, read a row group at a time: `table[lang]`
    iterates one language's token lists without holding the table in memory."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise MissingInput(path)
        self.path = path

    def __getitem__(self, lang: str) -> Iterator[list[str]]:
        for batch in pq.ParquetFile(self.path).iter_batches(columns=[lang]):
            yield from batch.column(0).to_pylist()


def tokenized_chunks(
    raw_dir: Path, split: str, src_lang: str, trg_lang: str, chunk: int = 10_000
) -> Iterator[pd.DataFrame]:
    """A split's tokens in frames of `chunk` pairs, one list-of-tokens column per language:
    memory holds one chunk, whatever the corpus size."""
    pairs = iter_pairs(raw_dir, split, src_lang, trg_lang)
    while batch := list(itertools.islice(pairs, chunk)):
        src, trg = zip(*batch, strict=True)
        yield pd.DataFrame({src_lang: tokenize(src, src_lang), trg_lang: tokenize(trg, trg_lang)})
