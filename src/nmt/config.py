"""Typed, validated view of params.yaml.

Every stage reads its params through `load_params`, so a typo or an out-of-range value
stops the stage before it writes anything, with one line naming the key.
"""

from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from nmt import NMTError

ARCHS = ("lstm", "gru", "attention", "transformer")
# Keys an architecture's own model section may set besides the shared keys it overrides.
ARCH_KEYS = {
    "lstm": {"n_layers", "reverse_src"},
    "gru": {"reverse_src"},
    "attention": {"attn_dim", "masked", "reverse_src"},
    "transformer": {
        "n_layers",
        "heads",
        "ff_dim",
        "positions",
        "max_positions",
        "norm_first",
        "tie_embeddings",
        "reverse_src",
    },
}
SHARED_MODEL_KEYS = {"emb_dim", "hid_dim", "dropout"}
SCHEDULES = ("constant", "inverse_sqrt", "cosine")


class ParamsError(NMTError):
    pass


def _require(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ParamsError(f"params.yaml: {key} must be {rule}, got {value!r}")


def _at_least(section: str, params: Any, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        _require(value >= minimum, f"{section}.{name}", f">= {minimum}", value)


@dataclass(frozen=True)
class DataParams:
    url: str  # a URL base or a local folder holding the corpus files
    src_lang: str
    trg_lang: str
    splits: tuple[str, ...]
    checksums: str = "src/nmt/multi30k_task1.sha256"  # SHA-256 of every file, sha256sum format
    file_name: str = "{split}.{lang}.gz"  # how the corpus names a split's file in a language
    max_len: int = 100  # training pairs with a longer side (in words) are dropped

    def __post_init__(self) -> None:
        _at_least("data", self, 1, "max_len")
        _require(
            "{split}" in self.file_name and "{lang}" in self.file_name,
            "data.file_name",
            "a pattern with {split} and {lang}",
            self.file_name,
        )
        _require(
            "train" in self.splits and "val" in self.splits,
            "data.splits",
            "a list that includes 'train' and 'val'",
            list(self.splits),
        )


@dataclass(frozen=True)
class VocabParams:
    min_freq: int = 2

    def __post_init__(self) -> None:
        _at_least("vocab", self, 1, "min_freq")


@dataclass(frozen=True)
class BatchParams:
    size: int = 128
    pool_factor: int = 100  # examples are sorted by length within pools of size * pool_factor

    def __post_init__(self) -> None:
        _at_least("batch", self, 1, "size", "pool_factor")


@dataclass(frozen=True)
class ModelParams:
    arch: str
    emb_dim: int
    hid_dim: int
    dropout: float
    n_layers: int = 1
    attn_dim: int = 512
    masked: bool = True
    reverse_src: bool = False
    heads: int = 8  # the Transformer's keys from here on
    ff_dim: int = 512
    positions: str = "learned"  # or "sinusoidal"
    max_positions: int = 100  # longest sentence, <sos> and <eos> included
    norm_first: bool = False  # pre-norm; post-norm (the paper's) when false
    tie_embeddings: bool = False  # the output layer reuses the target embedding

    def __post_init__(self) -> None:
        _require(self.arch in ARCHS, "the architecture", f"one of {', '.join(ARCHS)}", self.arch)
        _at_least("model", self, 1, "emb_dim", "hid_dim", "n_layers", "attn_dim")
        _at_least("model", self, 1, "heads", "ff_dim", "max_positions")
        _require(0 <= self.dropout < 1, "model.dropout", "in [0, 1)", self.dropout)
        if self.arch == "transformer":
            where = "model.transformer"
            _require(self.emb_dim == self.hid_dim, f"{where}.emb_dim", "hid_dim", self.emb_dim)
            _require(
                self.hid_dim % self.heads == 0,
                f"{where}.hid_dim",
                f"a multiple of heads ({self.heads})",
                self.hid_dim,
            )
            kinds = ("learned", "sinusoidal")
            _require(
                self.positions in kinds, f"{where}.positions", " or ".join(kinds), self.positions
            )


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 20
    lr: float = 1e-3
    clip: float = 1.0
    teacher_forcing: float = 0.5
    label_smoothing: float = 0.0
    schedule: str = "constant"  # learning rate after warmup: constant, inverse_sqrt, cosine
    warmup: int = 0  # optimizer steps of linear warmup
    batch_tokens: int = 0  # batches of at most this many padded tokens; 0: batch.size sentences
    average: int = 1  # the model is the mean of the last `average` epochs' weights
    max_batches: int = 0  # per epoch; 0 means the whole training set
    processes: int = 1  # data-parallel ranks on this machine (torchrun); batches stay global
    amp: bool = False  # bfloat16 autocast in training

    def __post_init__(self) -> None:
        _at_least("train", self, 1, "epochs", "average", "processes")
        _at_least("train", self, 0, "max_batches", "warmup", "batch_tokens")
        _require(self.lr > 0, "train.lr", "> 0", self.lr)
        _require(self.clip > 0, "train.clip", "> 0", self.clip)
        for name in ("teacher_forcing", "label_smoothing"):
            _require(
                0 <= getattr(self, name) <= 1, f"train.{name}", "in [0, 1]", getattr(self, name)
            )
        _require(
            self.schedule in SCHEDULES,
            "train.schedule",
            f"one of {', '.join(SCHEDULES)}",
            self.schedule,
        )

    def resume_key(self) -> dict[str, Any]:
        """The settings a resumed run must share. Not `epochs`, so training longer continues,
        unless the learning rate schedule depends on the number of epochs."""
        return {k: v for k, v in asdict(self).items() if k != "epochs" or self.schedule == "cosine"}


TRAIN_KEYS = {f.name for f in fields(TrainParams)}


@dataclass(frozen=True)
class EvaluateParams:
    test_sets: tuple[str, ...] = ("test_2016_flickr",)
    beam_size: int = 5
    length_penalty: float = 0.6  # GNMT's alpha; 0 ranks beams by raw log-probability
    max_len: int = 100  # output tokens at most, <eos> included
    batch_size: int = 128  # sentences decoded together
    heatmaps: int = 4  # attention heatmaps of the first sentences of test_sets[0]

    def __post_init__(self) -> None:
        _require(len(self.test_sets) >= 1, "evaluate.test_sets", "a non-empty list", [])
        _at_least("evaluate", self, 1, "beam_size", "max_len", "batch_size")
        _at_least("evaluate", self, 0, "length_penalty", "heatmaps")


@dataclass(frozen=True)
class Params:
    seed: int
    data: DataParams
    vocab: VocabParams
    batch: BatchParams
    model: dict[str, Any]
    train: dict[str, Any]
    evaluate: EvaluateParams
    device: str = "auto"  # the GPU where there is one, else the CPU; or cpu, cuda, cuda:N

    def model_params(self, arch: str) -> ModelParams:
        """The shared model keys, overridden by the architecture's own section."""
        _check_arch(arch)
        shared = {k: v for k, v in self.model.items() if k in SHARED_MODEL_KEYS}
        merged = {**shared, **(self.model.get(arch) or {})}
        return _build(ModelParams, {"arch": arch, **merged}, f"model.{arch}")

    def train_params(self, arch: str) -> TrainParams:
        """The shared training keys, overridden by the architecture's own section."""
        _check_arch(arch)
        shared = {k: v for k, v in self.train.items() if k not in ARCHS}
        return _build(TrainParams, {**shared, **(self.train.get(arch) or {})}, f"train.{arch}")


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ParamsError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")


def _check_type(value: Any, kind: Any, key: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise ParamsError(f"params.yaml: {key} must be an integer, got {value!r}")
    if typing.get_origin(kind) is tuple:
        _require(
            isinstance(value, list) and all(isinstance(v, str) for v in value),
            key,
            "a list of strings",
            value,
        )
        return tuple(value)
    if typing.get_origin(kind) is dict:
        _require(isinstance(value, dict), key, "a mapping", value)
        return value
    _require(isinstance(value, kind), key, f"of type {kind.__name__}", value)
    return value


def _build(cls: type, raw: Any, where: str) -> Any:
    _require(isinstance(raw, dict), where, "a mapping", raw)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)]
    for key in raw:
        if key not in names:
            raise ParamsError(
                f"params.yaml: unknown key '{where}.{key}' (allowed: {', '.join(names)})"
            )
    values = {}
    for f in fields(cls):
        if f.name in raw:
            values[f.name] = _check_type(raw[f.name], hints[f.name], f"{where}.{f.name}")
        elif f.default is MISSING:
            raise ParamsError(f"params.yaml: missing key '{where}.{f.name}'")
    return cls(**values)


def _check_sections(
    section: str, raw: dict[str, Any], shared: set[str], own: dict[str, set[str]]
) -> None:
    """Shared keys at the top of `section`, and a sub-section per architecture holding its
    own keys (`own[arch]`) and overrides of shared ones."""
    for key, value in raw.items():
        if isinstance(value, dict) or key in ARCHS:
            if key not in ARCHS:
                raise ParamsError(
                    f"params.yaml: unknown architecture '{section}.{key}' "
                    f"(known: {', '.join(ARCHS)})"
                )
            _require(isinstance(value, dict | None), f"{section}.{key}", "a mapping", value)
            allowed = own[key] | shared
            for sub in value or {}:
                if sub not in allowed:
                    raise ParamsError(
                        f"params.yaml: unknown key '{section}.{key}.{sub}' "
                        f"(allowed: {', '.join(sorted(allowed))})"
                    )
        elif key not in shared:
            raise ParamsError(
                f"params.yaml: unknown key '{section}.{key}' "
                f"(allowed: {', '.join(sorted(shared | set(ARCHS)))})"
            )


def parse_params(raw: Any) -> Params:
    _require(isinstance(raw, dict), "the top level", "a mapping", raw)
    known = {f.name for f in fields(Params)}
    for key in raw:
        if key not in known:
            raise ParamsError(
                f"params.yaml: unknown key '{key}' (allowed: {', '.join(sorted(known))})"
            )
    for key in ("seed", "data", "model"):
        if key not in raw:
            raise ParamsError(f"params.yaml: missing key '{key}'")
    _require(
        isinstance(raw["seed"], int) and not isinstance(raw["seed"], bool),
        "seed",
        "an integer",
        raw["seed"],
    )
    _require(isinstance(raw["model"], dict), "model", "a mapping", raw["model"])
    _check_sections("model", raw["model"], SHARED_MODEL_KEYS, ARCH_KEYS)
    train = raw.get("train", {})
    _require(isinstance(train, dict), "train", "a mapping", train)
    _check_sections("train", train, TRAIN_KEYS, {arch: set() for arch in ARCHS})
    _build(TrainParams, {k: v for k, v in train.items() if k not in ARCHS}, "train")
    params = Params(
        seed=raw["seed"],
        data=_build(DataParams, raw["data"], "data"),
        vocab=_build(VocabParams, raw.get("vocab", {}), "vocab"),
        batch=_build(BatchParams, raw.get("batch", {}), "batch"),
        model=raw["model"],
        train=train,
        evaluate=_build(EvaluateParams, raw.get("evaluate", {}), "evaluate"),
        device=_check_type(raw.get("device", "auto"), str, "device"),
    )
    for name in params.evaluate.test_sets:
        _require(
            name in params.data.splits,
            "each of evaluate.test_sets",
            f"one of data.splits ({', '.join(params.data.splits)})",
            name,
        )
    for arch in ARCHS:  # validate every architecture's merged settings up front
        params.model_params(arch)
        params.train_params(arch)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path} not found: run stages from the project root") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_params(raw)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of dataclasses and plain values, to tell runs apart."""
    plain = [asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts]
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
