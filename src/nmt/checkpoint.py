"""The trained-model file: weights plus everything needed to rebuild the model and check that
it is used with the vocabularies it was trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt import MissingInput, NMTError
from nmt.config import ModelParams
from nmt.io import save_torch
from nmt.models import architecture, build_model
from nmt.seq2seq import Seq2Seq


def save_model(
    path: Path,
    model: Seq2Seq,
    arch: str,
    params: ModelParams,
    vocab_sizes: tuple[int, int],
    vocab_hashes: tuple[str, str],
    **info: Any,
) -> None:
    save_torch(
        path,
        {
            "arch": arch,
            "model_params": params.model_dump(),
            "vocab_sizes": vocab_sizes,
            "vocab_hashes": vocab_hashes,
            "state_dict": model.state_dict(),
            **info,
        },
    )


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A model file's contents, checked to be one of this project's."""
    if not path.is_file():
        raise MissingInput(path)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        architecture(saved["arch"]).Params.model_validate(saved["model_params"])
    except Exception as err:  # any unreadable file gets the same one-line answer
        raise NMTError(
            f"{path} is not a model checkpoint of this project, or one from an older version "
            f"of it ({type(err).__name__}: {err})"
        ) from None
    return saved


def load_model(
    path: Path,
    vocab_hashes: tuple[str, str],
    arch: str | None = None,
    saved: dict[str, Any] | None = None,
) -> tuple[Seq2Seq, ModelParams, dict[str, Any]]:
    """The model in eval mode, its params and its file's info (`saved`, if already read);
    refuses a file made for other vocabularies."""
    saved = saved if saved is not None else read_checkpoint(path)
    if arch is not None and saved["arch"] != arch:
        raise NMTError(f"{path} holds a {saved['arch']!r} model, not {arch!r}")
    if tuple(saved["vocab_hashes"]) != tuple(vocab_hashes):
        raise MissingInput(path, "was trained with other vocabularies than those given")
    params = architecture(saved["arch"]).Params.model_validate(saved["model_params"])
    model = build_model(saved["arch"], params, *saved["vocab_sizes"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, params, saved
