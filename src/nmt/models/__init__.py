"""The architectures: every module in this package is one, named as params.yaml and the
stages name it. Module `nmt.models.<name>` defines its model class as `MODEL` and the class of
its params section as `Params` (a `nmt.config.ModelParams`); nothing else registers it.

Only the architecture a stage runs is imported, so an edit to one architecture's module is a
dependency of that architecture's stages alone and retrains nothing else.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nmt.config import ModelParams, ParamsError, available_archs
from nmt.seq2seq import Seq2Seq

__all__ = ["architecture", "available_archs", "build_model"]


def architecture(name: str) -> ModuleType:
    if name not in available_archs():
        known = ", ".join(available_archs())
        raise ParamsError(f"unknown architecture {name!r} (known: {known})")
    return importlib.import_module(f"{__name__}.{name}")


def build_model(arch: str, p: ModelParams, src_vocab: int, trg_vocab: int) -> Seq2Seq:
    return architecture(arch).MODEL(src_vocab, trg_vocab, p)
