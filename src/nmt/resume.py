"""What a training run leaves behind to resume from: its folder of checkpoint files, the
state `last.pt` holds, the code that wrote it, and whether a new run may continue from it.

A run resumes only with the settings and the code that wrote it: after an edit to any module
the run loads, training starts afresh, since the weights would differ.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch

from nmt import NMTError, dropout
from nmt.config import TrainParams
from nmt.io import save_torch
from nmt.runtime import Ranks

Weights = dict[str, torch.Tensor]


class RunState(TypedDict):
    """last.pt: everything a resumed run needs to continue exactly."""

    fingerprint: str  # the settings but train.epochs and train.patience
    code: dict[str, str]  # `running_code()` of the stage that wrote it
    model: Weights
    optimizer: dict[str, Any]  # torch's state dicts
    scheduler: dict[str, Any]
    teacher_forcing_rng: torch.Tensor
    epoch: int  # epochs completed
    history: list[dict[str, float]]  # one record per epoch
    best_valid: float
    best_epoch: int
    torch_rng: list[torch.Tensor]  # per rank, added by `RunFiles.save_last`
    mask_rng: list[Any]  # per rank: nmt.dropout's state


def average_weights(states: list[Weights]) -> Weights:
    """The element-wise mean of several checkpoints of one model."""
    return {
        name: torch.stack([s[name] for s in states]).mean(0)
        if states[0][name].is_floating_point()
        else states[-1][name]
        for name in states[0]
    }


def running_code() -> dict[str, str]:
    """SHA-256 of each project source file this process runs, by path: the stage script and
    every loaded `nmt` module (the models' only while their architecture is imported)."""
    files = {os.path.relpath(str(sys.modules["__main__"].__file__))}
    files |= {
        path
        for name, module in sys.modules.items()
        if (name == "nmt" or name.startswith("nmt."))
        and (path := getattr(module, "__file__", None))
    }
    package_root = Path(str(sys.modules["nmt"].__file__)).parent.parent
    digests = {}
    for file in files:
        path = Path(file)
        key = path.relative_to(package_root) if path.is_relative_to(package_root) else path
        digests[key.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def changed_files(before: dict[str, str], now: dict[str, str]) -> list[str]:
    return sorted(f for f in before.keys() | now.keys() if before.get(f) != now.get(f))


@dataclass
class RunFiles:
    """A training run's folder: `last.pt` holds everything a resumed run needs (weights,
    optimizer, every random state); `best.pt` the best epoch's weights; and when the model is
    the mean of the last `average` epochs, `epoch_<n>.pt` the weights of each of those."""

    folder: Path
    average: int = 1

    @property
    def last(self) -> Path:
        return self.folder / "last.pt"

    @property
    def best(self) -> Path:
        return self.folder / "best.pt"

    def epoch(self, number: int) -> Path:
        return self.folder / f"epoch_{number}.pt"

    def save_last(self, state: dict[str, Any], ranks: Ranks) -> None:
        """`state` and the random states: the main rank's teacher forcing draws (in `state`)
        and every rank's dropout draws (nmt.dropout's masks, and torch's for what it draws
        inside kernels), gathered to the main rank, which writes."""
        torch_rngs = ranks.gather(torch.get_rng_state())
        mask_rngs = ranks.gather(dropout.get_state())
        if ranks.is_main:
            save_torch(self.last, {**state, "torch_rng": torch_rngs, "mask_rng": mask_rngs})

    def load(self, path: Path) -> Any:
        """A checkpoint of this folder. Tensors and plain values only: a file that holds
        anything else (pickled code) is refused, never run, as is a damaged one."""
        try:
            with warnings.catch_warnings():  # torch warns of a legacy format before failing
                warnings.simplefilter("ignore")
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:  # torch's message offers to run the file's code
            code = "GLOBAL" in str(err)  # a callable named in the pickle
            problem = (
                "holds more than tensors and plain values, and is not read"
                if code
                else "is damaged or not a checkpoint of this project"
            )
        except Exception:  # damaged bytes fail anywhere in torch's reader, in any way
            problem = "is damaged or not a checkpoint of this project"
        raise NMTError(f"{path} {problem}; delete {self.folder} to train afresh")

    def read_last(self) -> RunState | None:
        """The state of the last finished epoch."""
        return self.load(self.last) if self.last.is_file() else None

    def end_epoch(self, number: int, weights: Weights, best: bool) -> None:
        """Keep what an epoch leaves for the final model (main rank only)."""
        if best:
            save_torch(self.best, weights)
        if self.average > 1:
            save_torch(self.epoch(number), weights)
            self.epoch(number - self.average).unlink(missing_ok=True)

    def check_kept(self, epoch: int) -> None:
        """A run resumed after `epoch` needs the weights the kept model is made of: without
        them it would train on and then fail, or keep another model than it reports."""
        needed = [self.best]
        if self.average > 1:
            needed += [self.epoch(e) for e in range(max(1, epoch - self.average + 1), epoch + 1)]
        missing = [path.name for path in needed if not path.is_file()]
        if missing:
            raise NMTError(
                f"{self.last} is after epoch {epoch} but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing from {self.folder}; "
                f"delete {self.folder} to train afresh"
            )

    def final_state(self, epochs: int) -> Weights:
        """The model to keep: the best epoch's, or the mean of the last `average` epochs'."""
        if self.average == 1:
            return self.load(self.best)
        first = max(1, epochs - self.average + 1)
        return average_weights([self.load(self.epoch(e)) for e in range(first, epochs + 1)])


def why_not_resume(
    state: RunState, fingerprint: str, code: dict[str, str], params: TrainParams
) -> str | None:
    """What keeps a run with these settings and code from continuing `state`; None if nothing."""
    if state["fingerprint"] != fingerprint:
        return "is from other settings"
    changed = changed_files(state.get("code", {}), code)
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if changed[3:] else "")
        return f"was written by other code ({shown})"
    if state["epoch"] > params.epochs:
        return f"is {state['epoch']} epochs in, past train.epochs ({params.epochs})"
    stale = state["epoch"] - state["best_epoch"]
    if params.patience and stale > params.patience:
        return (
            f"is {stale} epochs past its best, more than train.patience ({params.patience}) allows"
        )
    return None
