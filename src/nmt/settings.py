"""One architecture's run, resolved: what stage `settings@<arch>` writes from params.yaml (the
architecture's own keys over the shared ones, its module's defaults filled in), and what its
train and evaluate stages read. Each stage depends on the file it reads, so it reruns exactly
when its own settings change: a shared key the architecture overrides retrains nothing, and a
decoding change never retrains.

data/settings/<arch>/train.json      `TrainSettings`, read by train@<arch>
data/settings/<arch>/evaluate.json   `EvaluateSettings`, read by evaluate@ and heatmaps@<arch>
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import SerializeAsAny, field_validator

from nmt import MissingInput, NMTError
from nmt.config import BatchParams, EvaluateParams, ModelParams, Params, Section, TrainParams
from nmt.io import write_json
from nmt.models import model_params, params_of_arch
from nmt.paths import SETTINGS


class RunSettings(Section):
    arch: str
    device: str  # auto, cpu, cuda or cuda:N
    vocab: str  # the name of the vocabulary it reads: its folder in data/vocab/ and data/ids/
    langs: tuple[str, str]  # source, target

    @classmethod
    def path(cls, arch: str) -> Path:
        raise NotImplementedError

    @classmethod
    def read(cls: type[R], arch: str) -> R:
        """The settings stage's file for `arch`, checked as it was written."""
        path = cls.path(arch)
        if not path.is_file():
            raise MissingInput(path)
        try:
            return cls.model_validate_json(path.read_bytes())
        except ValueError as err:
            raise NMTError(
                f"{path} is not what this code's settings stage writes ({err.__class__.__name__}):"
                f" rerun `dvc repro settings@{arch}`"
            ) from None

    def write(self) -> None:
        write_json(self.path(self.arch), self.model_dump(mode="json"))


R = TypeVar("R", bound=RunSettings)


class TrainSettings(RunSettings):
    seed: int
    max_len: int  # data.max_len: training pairs with a longer side are dropped
    batch: BatchParams
    model: SerializeAsAny[ModelParams]  # the params class of the architecture's module
    train: TrainParams
    threads_key: str  # how params.yaml spells the key that set train.threads

    _architecture_params = field_validator("model", mode="before")(params_of_arch)

    @classmethod
    def path(cls, arch: str) -> Path:
        return SETTINGS / arch / "train.json"


class EvaluateSettings(RunSettings):
    evaluate: EvaluateParams
    threads_key: str  # how params.yaml spells the key that set evaluate.threads

    @classmethod
    def path(cls, arch: str) -> Path:
        return SETTINGS / arch / "evaluate.json"


def train_settings(params: Params, arch: str) -> TrainSettings:
    return TrainSettings(
        arch=arch,
        device=params.device,
        vocab=params.vocab_of(arch),
        langs=(params.data.src_lang, params.data.trg_lang),
        seed=params.seed,
        max_len=params.data.max_len,
        batch=params.batch,
        model=model_params(params, arch),
        train=params.train_params(arch),
        threads_key=params.key(arch, "train", "threads"),
    )


def evaluate_settings(params: Params, arch: str) -> EvaluateSettings:
    return EvaluateSettings(
        arch=arch,
        device=params.device,
        vocab=params.vocab_of(arch),
        langs=(params.data.src_lang, params.data.trg_lang),
        evaluate=params.evaluate_params(arch),
        threads_key=params.key(arch, "evaluate", "threads"),
    )
