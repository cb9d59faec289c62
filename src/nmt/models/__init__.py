"""The architectures: every module in this package is one, named as params.yaml and the
stages name it. Module `nmt.models.<name>` defines its model class as `MODEL` and the class of
its params section as `Params` (a `nmt.config.ModelParams`); nothing else registers it.

Only the architecture a stage runs is imported, so an edit to one architecture's module is a
dependency of that architecture's stages alone and retrains nothing else.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from pydantic import ValidationInfo

from nmt.config import ModelParams, Params, ParamsError, available_archs
from nmt.seq2seq import Seq2Seq

__all__ = ["Architecture", "architecture", "available_archs", "build_model", "model_params"]


@dataclass(frozen=True)
class Architecture:
    name: str
    Params: type[ModelParams]  # its params.yaml section's model keys
    MODEL: type[Seq2Seq]  # built as MODEL(source vocabulary size, target vocabulary size, params)


def architecture(name: str) -> Architecture:
    if name not in available_archs():
        known = ", ".join(available_archs())
        raise ParamsError(f"unknown architecture {name!r} (known: {known})")
    module = importlib.import_module(f"{__name__}.{name}")
    return Architecture(name, module.Params, module.MODEL)


def model_params(params: Params, arch: str) -> ModelParams:
    """The shared model keys, overridden by the architecture's own, checked by its module."""
    return params.resolved(arch, "model", architecture(arch).Params)


def params_of_arch(value: object, info: ValidationInfo) -> ModelParams:
    """A record's `model` field checked by the params class of its `arch` field's module: the
    validator of every record that holds an architecture's params."""
    arch = info.data.get("arch")
    if not isinstance(arch, str):
        raise ValueError("no architecture to check the model params with")
    return architecture(arch).Params.model_validate(value)


def build_model(arch: str, p: ModelParams, src_vocab: int, trg_vocab: int) -> Seq2Seq:
    return architecture(arch).MODEL(src_vocab, trg_vocab, p)
