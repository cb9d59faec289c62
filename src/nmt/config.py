"""Typed, validated view of params.yaml: a pydantic model per section.

Every stage reads its params through `load_params`, so a typo or an out-of-range value stops
the stage before it writes anything, with one line naming the key. The `model`, `train` and
`evaluate` sections hold settings every architecture shares; each architecture listed in
`archs` has a section of its own (`gru: {model: {...}, train: {...}, evaluate: {...}}`) that
overrides them. Its model keys are checked by the params class of its module, which
`nmt.models.model_params` passes in: this module imports no model code.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from nmt import NMTError
from nmt.params_errors import Invalid, one_line

if TYPE_CHECKING:
    from nmt import search


class ParamsError(NMTError):
    pass


def interval(low: float, high: float, high_open: bool = False) -> AfterValidator:
    def check(value: float) -> float:
        if not (low <= value < high if high_open else low <= value <= high):
            raise Invalid(f"in [{low:g}, {high:g}{')' if high_open else ']'}", value)
        return value

    return AfterValidator(check)


Fraction = Annotated[float, interval(0, 1)]
AdamBeta = Annotated[float, interval(0, 1, high_open=True)]
Names = Annotated[tuple[str, ...], Field(strict=False)]  # a YAML list becomes a tuple


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


S = TypeVar("S", bound=Section)


class DataParams(Section):
    url: str  # a URL base or a local folder holding the corpus files
    src_lang: str
    trg_lang: str
    splits: Names
    checksums: str = "src/nmt/multi30k_task1.sha256"  # SHA-256 of every file, sha256sum format
    file_name: str = "{split}.{lang}.gz"  # how the corpus names a split's file in a language
    max_len: int = Field(100, ge=1)  # training pairs with a longer side (in tokens) are dropped

    @model_validator(mode="after")
    def _patterns(self) -> DataParams:
        if "{split}" not in self.file_name or "{lang}" not in self.file_name:
            raise Invalid("a pattern with {split} and {lang}", self.file_name, "file_name")
        if "train" not in self.splits or "val" not in self.splits:
            raise Invalid("a list that includes 'train' and 'val'", list(self.splits), "splits")
        return self


class WordVocabParams(Section):
    """spaCy's rule-based tokens, each a vocabulary entry if seen `min_freq` times in training:
    the classic Multi30k vocabularies (lowercased, 7,853 German and 5,893 English words)."""

    kind: Literal["words"]
    lowercase: bool = True
    min_freq: int = Field(2, ge=1)


class SentencePieceParams(Section):
    """Subword units learnt by SentencePiece from the training split; they spell any word of
    known characters, and decode back to the exact text."""

    kind: Literal["sentencepiece"]
    lowercase: bool = False
    model_type: Literal["bpe", "unigram"] = "bpe"
    vocab_size: int = Field(8000, ge=8)  # pieces, the 4 specials included
    joint: bool = True  # one model and vocabulary for both languages; else one per language
    character_coverage: Annotated[float, Field(gt=0, le=1)] = 1.0  # rarer characters are <unk>
    # nmt_nfkc: Unicode NFKC and single spaces, in the text read and so in the text written;
    # identity: every character and space kept, so decoding gives back the exact input
    normalization: Literal["nmt_nfkc", "identity"] = "nmt_nfkc"
    input_sentence_size: int = Field(1_000_000, ge=1)  # trained on a sample of this many lines
    # A character unseen in training (an emoji, CJK) as its UTF-8 bytes, 256 pieces of the
    # vocab_size, instead of <unk>: then a subword model spells any text
    byte_fallback: bool = False


VocabParams = Annotated[WordVocabParams | SentencePieceParams, Field(discriminator="kind")]
VOCAB_KINDS: dict[str, type[WordVocabParams | SentencePieceParams]] = {
    "words": WordVocabParams,
    "sentencepiece": SentencePieceParams,
}


class BatchParams(Section):
    size: int = Field(128, ge=1)
    pool_factor: int = Field(100, ge=1)  # examples are sorted by length in pools of size * this


class ModelParams(Section):
    """What every architecture has; its module's `Params` subclasses this with its own keys."""

    emb_dim: int = Field(ge=1)
    hid_dim: int = Field(ge=1)
    dropout: Annotated[float, interval(0, 1, high_open=True)]
    reverse_src: bool = False  # feed the source backwards, as Sutskever et al.


class TrainParams(Section):
    epochs: int = Field(20, ge=1)
    lr: float = Field(1e-3, gt=0)
    clip: float = Field(1.0, gt=0)
    teacher_forcing: Fraction = 0.5
    label_smoothing: Fraction = 0.0
    schedule: Literal["constant", "inverse_sqrt", "cosine"] = "constant"  # after warmup
    warmup: int = Field(0, ge=0)  # optimizer steps of linear warmup
    batch_tokens: int = Field(0, ge=0)  # batches of at most this many padded tokens; 0: batch.size
    average: int = Field(1, ge=1)  # the model is the mean of the last `average` epochs' weights
    patience: int = Field(0, ge=0)  # stop after this many epochs without a better valid loss
    max_batches: int = Field(0, ge=0)  # per epoch; 0 means the whole training set
    processes: int = Field(1, ge=1)  # data-parallel ranks on this machine; batches stay global
    amp: bool = False  # bfloat16 autocast in training
    # torch's intra-op threads: summation order follows them, and so do the numbers
    threads: int = Field(1, ge=1)
    betas: Annotated[tuple[AdamBeta, AdamBeta], Field(strict=False)] = (0.9, 0.999)  # Adam's
    # R-Drop's alpha (Liang et al. 2021): each batch runs twice, and the symmetric KL between
    # the two passes' output distributions is added to the loss with this weight; 0 = off
    rdrop_alpha: float = Field(0.0, ge=0)
    # Subword regularisation: each epoch's training pairs are segmented anew by sampling
    # from the SentencePiece model with this alpha (a BPE model: the probability of dropping
    # a merge, Provilkov et al. 2020); decoding keeps the best segmentation. 0 = off
    subword_sampling: Annotated[float, interval(0, 1, high_open=True)] = 0.0

    def resume_key(self) -> dict[str, object]:
        """The settings a resumed run must share. Not `epochs` or `patience`, so training longer
        continues, unless the learning rate schedule depends on the number of epochs."""
        free = {"patience"} if self.schedule == "cosine" else {"epochs", "patience"}
        return self.model_dump(exclude=free)


class EvaluateParams(Section):
    test_sets: Annotated[Names, Field(min_length=1)] = ("test_2016_flickr",)
    # The search's defaults, for evaluation and the `translate` command alike:
    beam_size: int = Field(5, ge=1)
    length_penalty: float = Field(0.6, ge=0)  # GNMT's alpha; 0 ranks beams by log-probability
    max_len: int = Field(100, ge=1)  # output tokens at most, <eos> included
    batch_size: int = Field(128, ge=1)  # sentences decoded together
    heatmaps: int = Field(4, ge=0)  # attention heatmaps of the first sentences of test_sets[0]
    threads: int = Field(1, ge=1)  # torch's intra-op threads while decoding and scoring

    def search(
        self, beam_size: int | None = None, length_penalty: float | None = None
    ) -> search.SearchSettings:
        """These decoding settings, with another beam size or length penalty if given."""
        from nmt.search import SearchSettings  # here: reading params needs no search code

        return SearchSettings(
            self.beam_size if beam_size is None else beam_size,
            self.length_penalty if length_penalty is None else length_penalty,
            self.max_len,
            self.batch_size,
        )


Overrides = dict[str, JsonValue]  # keys as params.yaml gives them, checked once resolved


class ArchSection(Section):
    """An architecture's own settings: overrides of the shared ones, and its own model keys."""

    model: Overrides = {}
    train: Overrides = {}
    evaluate: Overrides = {}  # decoding: never retrains


class Params(Section):
    seed: int
    # what the pipeline trains, in this order: each architecture and the vocabulary it reads
    archs: Annotated[dict[str, str], Field(min_length=1)]
    data: DataParams
    vocabs: Annotated[dict[str, VocabParams], Field(min_length=1)]
    batch: BatchParams = BatchParams()
    model: ModelParams
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    device: str = "auto"  # the GPU where there is one, else the CPU; or cpu, cuda, cuda:N
    # each architecture's own section: the top-level keys of params.yaml named after one
    sections: dict[str, ArchSection] = {}

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        for arch, vocab in self.archs.items():
            if vocab not in self.vocabs:
                raise ParamsError(
                    f"params.yaml: archs.{arch} must be one of vocabs "
                    f"({', '.join(self.vocabs)}), got {vocab!r}"
                )
        return self

    def vocab_of(self, arch: str) -> str:
        """The name of the vocabulary `arch` reads: its folder in data/vocab/ and data/ids/."""
        return self.archs[arch]

    def section(self, arch: str) -> ArchSection:
        return self.sections.get(arch, ArchSection())

    def resolved(self, arch: str, section: Literal["model", "train"], cls: type[S]) -> S:
        """The shared keys of `section`, overridden by the architecture's own, checked by
        `cls` (for the model keys, the params class of the architecture's module)."""
        own = getattr(self.section(arch), section)
        merged = {**getattr(self, section).model_dump(exclude_unset=True), **own}
        return _build(cls, merged, _located(arch, section, own))

    def key(self, arch: str, section: Literal["model", "train", "evaluate"], key: str) -> str:
        """How params.yaml spells the key that sets `section.key` for `arch`: its own section's,
        or the shared one."""
        return _located(arch, section, getattr(self.section(arch), section))(key)

    def train_params(self, arch: str) -> TrainParams:
        return self.resolved(arch, "train", TrainParams)

    def evaluate_params(self, arch: str) -> EvaluateParams:
        """The shared decoding keys, overridden by the architecture's own (a length penalty
        tuned on `val` for one model)."""
        own = self.section(arch).evaluate
        located = _located(arch, "evaluate", own)
        settings = _build(EvaluateParams, {**self.evaluate.model_dump(), **own}, located)
        for name in settings.test_sets:
            if name not in self.data.splits:
                raise ParamsError(
                    f"params.yaml: each of {located('test_sets')} must be one of data.splits "
                    f"({', '.join(self.data.splits)}), got {name!r}"
                )
        return settings


def _located(arch: str, section: str, own: Overrides) -> Callable[[str], str]:
    """Where a merged key was set: the architecture's section, or the shared one."""
    return lambda key: f"{arch}.{section}.{key}" if key in own else f"{section}.{key}"


def _build(cls: type[S], raw: object, name: Callable[[str], str] = str) -> S:
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(one_line(err.errors()[0], cls, name)) from None


def available_archs() -> tuple[str, ...]:
    """The architectures: the modules of package `nmt.models`, by file name. Nothing is
    imported, so a stage that only checks names depends on no model code."""
    folder = Path(__file__).with_name("models")
    return tuple(sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__"))


def parse_params(raw: object) -> Params:
    known = available_archs()
    fields = [name for name in Params.model_fields if name != "sections"]
    if not isinstance(raw, dict):
        return _build(Params, raw)  # one line: the top level must be a mapping
    for key in raw:
        if key not in fields and key not in known:
            raise ParamsError(
                f"params.yaml: unknown key '{key}' (allowed: {', '.join(fields)}, or "
                f"an architecture: {', '.join(known)})"
            )
    top = {key: value for key, value in raw.items() if key in fields}
    if isinstance(top.get("vocabs"), dict):
        top["vocabs"] = {name: _vocab(name, spec) for name, spec in top["vocabs"].items()}
    params = _build(Params, top)
    for arch in params.archs:
        if arch not in known:
            raise ParamsError(
                f"params.yaml: archs names {arch!r}, which is not an architecture "
                f"(known: {', '.join(known)})"
            )
    sections = {
        key: _build(ArchSection, value, functools.partial("{}.{}".format, key))
        for key, value in raw.items()
        if key not in fields
    }
    for arch in params.archs:
        if arch not in sections:
            raise ParamsError(
                f"params.yaml: archs names {arch!r} but there is no '{arch}' section "
                f"(add `{arch}: {{}}`)"
            )
    params = params.model_copy(update={"sections": sections})
    vocabs = params.vocabs
    for arch in sections:  # training and decoding keys need no model module: check them now
        train = params.train_params(arch)
        params.evaluate_params(arch)
        vocab = params.archs.get(arch)
        if train.subword_sampling and vocab and vocabs[vocab].kind != "sentencepiece":
            key = params.key(arch, "train", "subword_sampling")
            raise ParamsError(
                f"params.yaml: {key} samples SentencePiece "
                f"segmentations, but archs.{arch} reads the {vocabs[vocab].kind} vocabulary "
                f"{vocab!r}: set it to 0 or point archs.{arch} to a sentencepiece vocabulary"
            )
    return params


def _vocab(name: str, spec: object) -> WordVocabParams | SentencePieceParams:
    kind = spec.get("kind") if isinstance(spec, dict) else None
    if kind not in VOCAB_KINDS:
        raise ParamsError(
            f"params.yaml: vocabs.{name}.kind must be one of {', '.join(VOCAB_KINDS)}, got {kind!r}"
        )
    return _build(VOCAB_KINDS[kind], spec, lambda key: f"vocabs.{name}.{key}")


def load_params(path: str | Path = "params.yaml") -> Params:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run stages from the project root") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_params(raw)


def fingerprint(*parts: object) -> str:
    """A short stable hash of params sections and plain values, to tell runs apart."""
    plain = [p.model_dump() if isinstance(p, BaseModel) else p for p in parts]
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
