"""The trained-model package: a folder that translates on its own, as it was measured, and
loads without running any code it carries.

models/<arch>/
    model.safetensors   the weights (safetensors: tensors only, no pickle)
    config.json         the architecture, its params, its vocabulary, what training reported
    vocab/              the vocabulary folder the model was trained with (tokenizer included)
    decoding.json       the search its evaluation ran (beam, length penalty, max length):
                        written by the evaluate stage, so a change to it never retrains

`translate --model models/<arch>` needs nothing else, from any directory, and decodes with
decoding.json unless told otherwise. `PackageConfig.read` is the one reader of both files.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializeAsAny,
    field_validator,
)
from safetensors import SafetensorError
from safetensors.torch import load_model as load_weights
from safetensors.torch import save_file

from nmt import MissingInput, NMTError
from nmt.config import EvaluateParams, ModelParams
from nmt.io import atomic_folder, write_json
from nmt.models import build_model, params_of_arch
from nmt.search import SearchSettings
from nmt.seq2seq import Seq2Seq
from nmt.vocab import Vocabulary, load_vocab_pair

FORMAT: Final = "nmt-model/2"
WEIGHTS, CONFIG, VOCAB_DIR, DECODING = "model.safetensors", "config.json", "vocab", "decoding.json"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Decoding(Record):
    """The search settings that decide a translation, as evaluation ran them."""

    beam_size: int
    length_penalty: float
    max_len: int

    @classmethod
    def of(cls, settings: EvaluateParams) -> Decoding:
        return cls(
            beam_size=settings.beam_size,
            length_penalty=settings.length_penalty,
            max_len=settings.max_len,
        )

    def search(
        self,
        beam_size: int | None = None,
        length_penalty: float | None = None,
        max_len: int | None = None,
        batch_size: int | None = None,
        n_best: int = 1,
    ) -> SearchSettings:
        """These settings, with any of them replaced; checked by `SearchSettings`."""
        return SearchSettings(
            self.beam_size if beam_size is None else beam_size,
            self.length_penalty if length_penalty is None else length_penalty,
            self.max_len if max_len is None else max_len,
            EvaluateParams().batch_size if batch_size is None else batch_size,
            n_best,
        )


UNMEASURED = Decoding.of(EvaluateParams())  # params.yaml's shared defaults


class Trained(Record):
    epoch: int  # the kept epoch (the last averaged one, for averaged weights)
    valid_loss: float


class PackageConfig(Record):
    """What a package is: config.json, and the search of decoding.json where it has one."""

    format: Literal["nmt-model/2"] = FORMAT
    arch: str
    model: SerializeAsAny[ModelParams]  # the params class of the architecture's module
    vocab: str  # its name in params.yaml's `vocabs`: its folder's
    vocab_kind: Literal["words", "sentencepiece"]
    langs: tuple[str, str]
    vocab_sizes: tuple[int, int]
    vocab_hashes: tuple[str, str]
    trained: Trained
    decoding: Decoding | None = None  # None: never evaluated, decoded with `UNMEASURED`

    _architecture_params = field_validator("model", mode="before")(params_of_arch)

    @classmethod
    def read(cls, folder: Path, name: str = CONFIG) -> PackageConfig:
        """The config of the package in `folder` (its file `name`), with its decoding.json."""
        path = folder / name
        if not path.is_file():
            raise MissingInput(path)
        try:
            config = cls.model_validate_json(path.read_bytes())
        except Exception as err:  # any unreadable file gets the same one-line answer
            problem = str(err).splitlines()[-1 if isinstance(err, ValueError) else 0].strip()
            raise NMTError(
                f"{folder} is not a model package of this project, or one from another "
                f"version of it ({type(err).__name__}: {problem})"
            ) from None
        decoding = folder / DECODING
        if not decoding.is_file():
            return config
        try:
            measured = Decoding.model_validate_json(decoding.read_bytes())
            measured.search()
        except (ValueError, NMTError) as err:
            problem = str(err).splitlines()[-1].strip()
            raise NMTError(
                f"{decoding} is not a package's decoding settings ({problem}): delete it to "
                f"decode with the defaults, or rerun the evaluate stage"
            ) from None
        return config.model_copy(update={"decoding": measured})

    def write(self, folder: Path, name: str = CONFIG) -> None:
        write_json(folder / name, self.model_dump(mode="json", exclude={"decoding"}))

    @property
    def search_defaults(self) -> Decoding:
        """How this package decodes unless told otherwise: as its evaluation did."""
        return self.decoding or UNMEASURED


def write_decoding(folder: Path, decoding: Decoding) -> None:
    write_json(folder / DECODING, decoding.model_dump())


def save_model(
    folder: Path,
    model: Seq2Seq,
    arch: str,
    params: ModelParams,
    vocab_dir: Path,
    langs: tuple[str, str],
    trained: Trained,
) -> None:
    """Write the package atomically: a reader sees the old folder or the new one, whole. The
    old one's decoding.json goes with it: it was measured on other weights."""
    src, trg = load_vocab_pair(vocab_dir, *langs)
    config = PackageConfig(
        arch=arch,
        model=params,
        vocab=vocab_dir.name,
        vocab_kind=src.kind,
        langs=langs,
        vocab_sizes=(len(src), len(trg)),
        vocab_hashes=(src.hash, trg.hash),
        trained=trained,
    )
    with atomic_folder(folder) as tmp:
        save_weights(model, tmp / WEIGHTS)
        config.write(tmp)
        shutil.copytree(vocab_dir, tmp / VOCAB_DIR)


def save_weights(model: Seq2Seq, path: Path) -> None:
    """Each tensor once, under the first name the state dict gives it (a tied output layer
    is its embedding): the same bytes for the same weights. safetensors' own `save_model`
    lists the other names in a header whose order changes from process to process."""
    unique: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    for name, tensor in model.state_dict().items():
        where = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if where not in seen:
            seen.add(where)
            unique[name] = tensor.contiguous()
    save_file(unique, str(path), metadata={"format": "pt"})


def packaged_vocabs(folder: Path, config: PackageConfig) -> tuple[Vocabulary, Vocabulary]:
    """The vocabularies a package (ours or its export) carries, checked against the hashes
    its config recorded."""
    vocabs = load_vocab_pair(folder / VOCAB_DIR, *config.langs)
    if (vocabs[0].hash, vocabs[1].hash) != config.vocab_hashes:
        raise NMTError(f"{folder / VOCAB_DIR} is not the vocabulary {folder} was trained with")
    return vocabs


@dataclass(frozen=True)
class ModelPackage:
    """A loaded package: the model in eval mode, its vocabularies (source, target) and its
    config."""

    model: Seq2Seq
    vocabs: tuple[Vocabulary, Vocabulary]
    config: PackageConfig


def load_model(folder: Path, arch: str | None = None) -> ModelPackage:
    """The package in `folder`, checked to hold an `arch` model when one is named."""
    config = PackageConfig.read(folder)
    if arch is not None and config.arch != arch:
        raise NMTError(f"{folder} holds a {config.arch!r} model, not {arch!r}")
    vocabs = packaged_vocabs(folder, config)
    model = build_model(config.arch, config.model, *config.vocab_sizes)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise MissingInput(weights)
    try:
        load_weights(model, str(weights))
    except (SafetensorError, RuntimeError) as err:
        problem = str(err).splitlines()[0]
        raise NMTError(f"{weights} is not safetensors weights of this model ({problem})") from None
    model.eval()
    return ModelPackage(model, vocabs, config)
