"""The architectures, by the name params.yaml and the stages use for them: module
`nmt.models.<name>` defines the architecture's class as `MODEL`.

Only the architecture a stage runs is imported, so an edit to one architecture's module is a
dependency of that architecture's stages alone and retrains nothing else.
"""

from __future__ import annotations

import importlib

from nmt.config import ModelParams
from nmt.models.base import Seq2Seq

__all__ = ["Seq2Seq", "build_model", "model_class"]


def model_class(arch: str) -> type[Seq2Seq]:
    return importlib.import_module(f"nmt.models.{arch}").MODEL


def build_model(p: ModelParams, src_vocab: int, trg_vocab: int) -> Seq2Seq:
    return model_class(p.arch)(src_vocab, trg_vocab, p)
