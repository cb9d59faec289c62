"""Read raw parallel text and tokenize it with spaCy's rule-based tokenizers, lowercased.

`spacy.blank(lang)` needs no model download and reproduces the classic Multi30k vocabularies.
Tokens are lowercased after tokenization, since spaCy's exceptions are case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import spacy

from nmt import NMTError


def read_lines(path: Path) -> list[str]:
    """The stripped lines of a UTF-8 file; a blank line is an error, since it breaks alignment."""
    if not path.is_file():
        raise NMTError(f"{path} not found: run `dvc repro download` first")
    payload = path.read_bytes()
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as err:
        line = payload[: err.start].count(b"\n") + 1
        raise NMTError(f"{path} line {line} is not valid UTF-8") from None
    lines = [line.strip() for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    if not lines:
        raise NMTError(f"{path} is empty")
    for number, line in enumerate(lines, start=1):
        if not line:
            raise NMTError(f"{path} line {number} is blank; every line must hold one sentence")
    return lines


def read_parallel(
    raw_dir: Path, split: str, src_lang: str, trg_lang: str
) -> tuple[list[str], list[str]]:
    src = read_lines(raw_dir / f"{split}.{src_lang}")
    trg = read_lines(raw_dir / f"{split}.{trg_lang}")
    if len(src) != len(trg):
        raise NMTError(
            f"split {split!r} is misaligned: {len(src)} {src_lang} lines "
            f"but {len(trg)} {trg_lang} lines"
        )
    return src, trg


def tokenize(lines: Iterable[str], lang: str) -> list[list[str]]:
    tokenizer = spacy.blank(lang).tokenizer
    return [[token.text.lower() for token in doc] for doc in tokenizer.pipe(lines, batch_size=1024)]


# Where the tokenizer split off punctuation and clitics, join them back (English).
_ATTACH_LEFT = re.compile(r" (?=[.,!?;:%)\]}]|'s\b|'re\b|'ve\b|'m\b|'ll\b|'d\b|n't\b)")
_ATTACH_RIGHT = re.compile(r"(?<=[(\[{$]) ")


def detokenize(tokens: list[str]) -> str:
    """Text from tokens, with spaces removed where the tokenizer had split without one."""
    text = " ".join(tokens)
    return _ATTACH_RIGHT.sub("", _ATTACH_LEFT.sub("", text))


def tokenize_split(raw_dir: Path, split: str, src_lang: str, trg_lang: str) -> pd.DataFrame:
    """One row per sentence pair, one list-of-tokens column per language."""
    src, trg = read_parallel(raw_dir, split, src_lang, trg_lang)
    return pd.DataFrame({src_lang: tokenize(src, src_lang), trg_lang: tokenize(trg, trg_lang)})
