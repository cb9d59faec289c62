"""The trained-model file: weights plus everything needed to rebuild the model and check that
it is used with the vocabularies it was trained on."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nmt import NMTError
from nmt.config import ModelParams
from nmt.io import save_torch
from nmt.models import Seq2Seq, build_model


def save_model(
    path: Path,
    model: Seq2Seq,
    params: ModelParams,
    vocab_sizes: tuple[int, int],
    vocab_hashes: tuple[str, str],
    **info: Any,
) -> None:
    save_torch(
        path,
        {
            "model_params": asdict(params),
            "vocab_sizes": vocab_sizes,
            "vocab_hashes": vocab_hashes,
            "state_dict": model.state_dict(),
            **info,
        },
    )


def load_model(
    path: Path, vocab_hashes: tuple[str, str], arch: str | None = None, target: str = "train"
) -> tuple[Seq2Seq, dict[str, Any]]:
    """The model in eval mode and its file's info; refuses a file made for other vocabularies."""
    if not path.is_file():
        raise NMTError(f"{path} not found: run `dvc repro {target}` to make it")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        params = ModelParams(**saved["model_params"])
    except Exception as err:  # any unreadable file gets the same one-line answer
        raise NMTError(f"{path} is not a model checkpoint of this project ({err})") from None
    if arch is not None and params.arch != arch:
        raise NMTError(f"{path} holds a {params.arch!r} model, not {arch!r}")
    if tuple(saved["vocab_hashes"]) != tuple(vocab_hashes):
        raise NMTError(
            f"{path} was trained with other vocabularies than data/vocab/ holds now; "
            f"retrain it with `dvc repro {target}`"
        )
    model = build_model(params, *saved["vocab_sizes"])
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return model, saved
