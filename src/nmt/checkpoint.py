"""The trained-model package: a folder that translates on its own, and loads without running
any code it carries.

models/<arch>/
    model.safetensors   the weights (safetensors: tensors only, no pickle)
    config.json         the architecture, its params, and what training reported
    vocab/              the vocabulary folder the model was trained with (tokenizer included)

`translate --model models/<arch>` needs nothing else, from any directory.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model as load_weights
from safetensors.torch import save_file

from nmt import MissingInput, NMTError
from nmt.config import ModelParams
from nmt.io import atomic_folder, write_json
from nmt.models import architecture, build_model
from nmt.seq2seq import Seq2Seq
from nmt.vocab import Vocabulary, load_vocab_pair

FORMAT = "nmt-model/1"
WEIGHTS, CONFIG, VOCAB_DIR = "model.safetensors", "config.json", "vocab"


def save_model(
    folder: Path,
    model: Seq2Seq,
    arch: str,
    params: ModelParams,
    vocab_dir: Path,
    langs: tuple[str, str],
    **info: Any,
) -> None:
    """Write the package atomically: a reader sees the old folder or the new one, whole."""
    src_vocab, trg_vocab = load_vocab_pair(vocab_dir, *langs)
    config = {
        "format": FORMAT,
        "arch": arch,
        "model_params": params.model_dump(),
        "langs": list(langs),
        "vocab_sizes": [len(src_vocab), len(trg_vocab)],
        "vocab_hashes": [src_vocab.hash, trg_vocab.hash],
        **info,
    }
    with atomic_folder(folder) as tmp:
        save_weights(model, tmp / WEIGHTS)
        write_json(tmp / CONFIG, config)
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


def read_config(folder: Path, name: str = CONFIG) -> dict[str, Any]:
    """A package's config (file `name` of `folder`), checked to be one of this project's."""
    path = folder / name
    if not path.is_file():
        raise MissingInput(path)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if config.get("format") != FORMAT:
            raise ValueError(f"format {config.get('format')!r}, expected {FORMAT!r}")
        architecture(config["arch"]).Params.model_validate(config["model_params"])
    except Exception as err:  # any unreadable file gets the same one-line answer
        raise NMTError(
            f"{folder} is not a model package of this project, or one from another version "
            f"of it ({type(err).__name__}: {err})"
        ) from None
    return config


def packaged_vocabs(folder: Path, config: dict[str, Any]) -> tuple[Vocabulary, Vocabulary]:
    """The vocabularies a package (ours or its export) carries, checked against the hashes
    its config recorded."""
    vocabs = load_vocab_pair(folder / VOCAB_DIR, *config["langs"])
    if [v.hash for v in vocabs] != config["vocab_hashes"]:
        raise NMTError(f"{folder / VOCAB_DIR} is not the vocabulary {folder} was trained with")
    return vocabs


@dataclass(frozen=True)
class ModelPackage:
    """A loaded package: the model in eval mode, its params, its vocabularies (source,
    target), and its config.json (`save_model`'s keys, and what training reported)."""

    model: Seq2Seq
    params: ModelParams
    vocabs: tuple[Vocabulary, Vocabulary]
    config: dict[str, Any]

    @property
    def arch(self) -> str:
        return self.config["arch"]


def load_model(folder: Path, arch: str | None = None) -> ModelPackage:
    """The package in `folder`, checked to hold an `arch` model when one is named."""
    config = read_config(folder)
    if arch is not None and config["arch"] != arch:
        raise NMTError(f"{folder} holds a {config['arch']!r} model, not {arch!r}")
    vocabs = packaged_vocabs(folder, config)
    params = architecture(config["arch"]).Params.model_validate(config["model_params"])
    model = build_model(config["arch"], params, *config["vocab_sizes"])
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise MissingInput(weights)
    try:
        load_weights(model, str(weights))
    except (SafetensorError, RuntimeError) as err:
        problem = str(err).splitlines()[0]
        raise NMTError(f"{weights} is not safetensors weights of this model ({problem})") from None
    model.eval()
    return ModelPackage(model, params, vocabs, config)
