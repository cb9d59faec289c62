"""Vocabularies: how text becomes token ids and ids become text again.

A vocabulary folder (data/vocab/<name>/) holds one token list per language, `<lang>.parquet`
(specials first, at the ids `nmt.SPECIALS` gives them), and `tokenizer.json`, which says how
its text is split into those tokens, so that a trained model is always read and written
with the tokenizer it was trained with:

- `words`: spaCy's rule-based tokens, perhaps lowercased, each seen `min_freq` times in
  training (by descending frequency, ties alphabetical); other words read as <unk>, and
  the output is joined by rules (`nmt.tokenization.detokenize`).
- `sentencepiece`: subword pieces from a SentencePiece model (`<lang>.model`), trained on the
  training split; any word of known characters is spelt by pieces, and decoding gives
  back the text read (after Unicode NFKC normalization, unless that is turned off).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import sentencepiece as spm

from nmt import EOS_ID, PAD_ID, SOS_ID, SPECIALS, UNK_ID, MissingInput, NMTError
from nmt.config import SentencePieceParams, VocabParams, WordVocabParams
from nmt.io import atomic_path, write_json, write_parquet
from nmt.tokenization import detokenize, iter_lines, tokenize


class Tokenizer(Protocol):
    def split(self, lines: list[str]) -> list[list[str]]: ...

    def join(self, tokens: list[str]) -> str: ...


@dataclass(frozen=True)
class WordTokenizer:
    lang: str
    lowercase: bool

    def split(self, lines: list[str]) -> list[list[str]]:
        return list(lowered(tokenize(lines, self.lang), self.lowercase))

    def join(self, tokens: list[str]) -> str:
        return detokenize(tokens)


@dataclass(frozen=True)
class PieceTokenizer:
    model: Path
    lowercase: bool
    processor: spm.SentencePieceProcessor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.model.is_file():
            raise MissingInput(self.model)
        try:
            processor = spm.SentencePieceProcessor(str(self.model))
        except (RuntimeError, OSError):
            raise NMTError(
                f"{self.model} is not a SentencePiece model (damaged, or another file): copy "
                "the package again, or rebuild it (dvc repro)"
            ) from None
        object.__setattr__(self, "processor", processor)

    def split(self, lines: list[str]) -> list[list[str]]:
        return self.processor.encode([lowered_line(s, self.lowercase) for s in lines], out_type=str)

    def join(self, tokens: list[str]) -> str:
        return self.processor.decode_pieces(tokens)

    def sample(self, lines: list[str], alpha: float, seed: int) -> list[list[str]]:
        """A segmentation of each line sampled with smoothing (unigram) or merge-dropout (BPE)
        `alpha`; the same for the same seed (one thread: threads would share the seed)."""
        spm.set_random_generator_seed(seed)
        return self.processor.encode(
            [lowered_line(s, self.lowercase) for s in lines],
            out_type=str,
            enable_sampling=True,
            alpha=alpha,
            nbest_size=-1,
            num_threads=1,
        )


def lowered(sentences: Iterable[list[str]], lowercase: bool) -> Iterator[list[str]]:
    return ([t.lower() for t in s] if lowercase else list(s) for s in sentences)


def lowered_line(line: str, lowercase: bool) -> str:
    return line.lower() if lowercase else line


FRAME = frozenset((PAD_ID, SOS_ID, EOS_ID))  # ids that are never text


@dataclass(frozen=True)
class Vocabulary:
    tokens: list[str]  # in id order, the specials first
    tokenizer: Tokenizer
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {token: i for i, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def hash(self) -> str:
        return vocab_hash(self.tokens)

    @property
    def kind(self) -> Literal["words", "sentencepiece"]:
        return "sentencepiece" if isinstance(self.tokenizer, PieceTokenizer) else "words"

    def ids(self, sentences: Iterable[list[str]]) -> list[np.ndarray]:
        """Token ids framed by <sos> and <eos>; unknown tokens map to <unk>."""
        return [
            np.array([SOS_ID, *(self.index.get(t, UNK_ID) for t in s), EOS_ID], dtype=np.int32)
            for s in sentences
        ]

    def encode(self, lines: list[str]) -> list[np.ndarray]:
        return self.ids(self.tokenizer.split(lines))

    def sample(self, lines: list[str], alpha: float, seed: int) -> list[np.ndarray]:
        """Ids of a sampled segmentation of each line (`PieceTokenizer.sample`)."""
        if not isinstance(self.tokenizer, PieceTokenizer):
            raise NMTError("only a SentencePiece vocabulary samples segmentations")
        return self.ids(self.tokenizer.sample(lines, alpha, seed))

    def words(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of output ids (no <sos>, <eos> or <pad>)."""
        return self.tokenizer.join(self.words(i for i in ids if i not in FRAME))


def vocab_hash(tokens: list[str]) -> str:
    """Identifies a vocabulary, so a checkpoint is never used with ids it was not trained on."""
    return hashlib.sha256("\n".join(tokens).encode()).hexdigest()[:16]


def count_vocab(sentences: Iterable[Iterable[str]], min_freq: int) -> pd.DataFrame:
    """Rows in id order: `token` and its training-set `freq` (0 for the specials)."""
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = sorted(
        (t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
        key=lambda t: (-counts[t], t),
    )
    return pd.DataFrame(
        {"token": [*SPECIALS, *kept], "freq": [0] * len(SPECIALS) + [counts[t] for t in kept]}
    )


def build_words(
    folder: Path,
    spec: WordVocabParams,
    train_tokens: Mapping[str, Iterable[list[str]]],
    langs: tuple[str, str],
) -> dict[str, int]:
    """A word vocabulary per language from the training split's spaCy tokens (`train_tokens[lang]`
    iterates one language's sentences: a `TokenTable` streams them); their sizes."""
    sizes = {}
    for lang in langs:
        vocab = count_vocab(lowered(train_tokens[lang], spec.lowercase), spec.min_freq)
        write_parquet(folder / f"{lang}.parquet", vocab)
        sizes[lang] = len(vocab)
    _describe(folder, spec, {})
    return sizes


def build_pieces(
    folder: Path, spec: SentencePieceParams, train_files: dict[str, Path], seed: int
) -> dict[str, int]:
    """SentencePiece models trained on the training split (one for both languages when
    `joint`), streaming at most `input_sentence_size` sampled lines into the trainer; their
    pieces are the vocabularies. Their sizes."""
    groups = [tuple(train_files)] if spec.joint else [(lang,) for lang in train_files]
    models = {}
    for group in groups:
        lines = (
            lowered_line(line, spec.lowercase)
            for lang in group
            for line in iter_lines(train_files[lang])
        )
        model = _train_pieces(lines, spec, seed, "+".join(group))
        for lang in group:
            models[lang] = model
    sizes = {}
    for lang, model in models.items():
        with atomic_path(folder / f"{lang}.model") as tmp:
            tmp.write_bytes(model)
        processor = spm.SentencePieceProcessor(model_proto=model)
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        scores = [processor.get_score(i) for i in range(len(pieces))]
        write_parquet(folder / f"{lang}.parquet", pd.DataFrame({"token": pieces, "score": scores}))
        sizes[lang] = len(pieces)
    _describe(folder, spec, {lang: f"{lang}.model" for lang in models})
    return sizes


def _train_pieces(lines: Iterator[str], spec: SentencePieceParams, seed: int, what: str) -> bytes:
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()  # the trainer writes the model here
    # only when on: a field set, even to its default, would change the model's bytes
    optional: dict[str, Any] = {"byte_fallback": True} if spec.byte_fallback else {}
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines,
            model_writer=model,
            model_type=spec.model_type,
            vocab_size=spec.vocab_size,
            character_coverage=spec.character_coverage,
            normalization_rule_name=spec.normalization,
            remove_extra_whitespaces=spec.normalization != "identity",
            input_sentence_size=spec.input_sentence_size,
            shuffle_input_sentence=True,
            num_threads=1,  # one thread: the same model on every machine
            unk_id=UNK_ID,
            pad_id=PAD_ID,
            bos_id=SOS_ID,
            eos_id=EOS_ID,
            unk_piece=SPECIALS[UNK_ID],
            pad_piece=SPECIALS[PAD_ID],
            bos_piece=SPECIALS[SOS_ID],
            eos_piece=SPECIALS[EOS_ID],
            minloglevel=2,
            **optional,
        )
    except RuntimeError as err:
        limit = re.search(r"value <= (\d+)", str(err))
        if limit:
            raise NMTError(
                f"params.yaml: vocab_size {spec.vocab_size} is more pieces than the {what} "
                f"training text allows with model_type {spec.model_type}: at most "
                f"{limit.group(1)}"
            ) from None
        raise NMTError(f"SentencePiece could not train on the {what} text: {err}") from None
    return model.getvalue()


def _describe(folder: Path, spec: VocabParams, models: dict[str, str]) -> None:
    write_json(
        folder / "tokenizer.json",
        {"kind": spec.kind, "lowercase": spec.lowercase, "models": models},
    )


def load_vocabulary(folder: Path, lang: str) -> Vocabulary:
    description, tokens_file = folder / "tokenizer.json", folder / f"{lang}.parquet"
    for path in (description, tokens_file):
        if not path.is_file():
            raise MissingInput(path)
    about = json.loads(description.read_text(encoding="utf-8"))
    tokens = pd.read_parquet(tokens_file)["token"].tolist()
    if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
        raise NMTError(f"{tokens_file} does not start with the specials {', '.join(SPECIALS)}")
    tokenizer: Tokenizer
    if about["kind"] == "sentencepiece":
        tokenizer = PieceTokenizer(folder / about["models"][lang], about["lowercase"])
    else:
        tokenizer = WordTokenizer(lang, about["lowercase"])
    return Vocabulary(tokens, tokenizer)


def load_vocab_pair(folder: Path, src_lang: str, trg_lang: str) -> tuple[Vocabulary, Vocabulary]:
    return load_vocabulary(folder, src_lang), load_vocabulary(folder, trg_lang)
