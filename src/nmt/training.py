"""The seed's training recipe: Adam, cross-entropy over non-pad tokens, per-step teacher forcing,
gradient clipping, and the checkpoint with the best validation loss; and, as options, what
Transformer recipes add: label smoothing, learning rate warmup and decay, batches of a token
budget, and a model averaged over the last epochs' weights.

Training resumes: after every epoch `last.pt` holds the model, optimizer and random states, so a
run that is stopped and started again ends exactly where an uninterrupted run would. It resumes
only with the settings and the code that wrote it: after an edit to any module the run loads,
training starts afresh, since the weights would differ.

Data-parallel ranks (`nmt.runtime`) split every batch and DDP averages their gradients; each
rank divides its summed loss by its share of the whole batch's tokens, so the update is the
one a single process makes from the whole batch.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import pickle
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nmt import NMTError, dropout
from nmt.batching import ParallelData, join_small_batches
from nmt.config import BatchParams, TrainParams
from nmt.io import save_torch
from nmt.loss import evaluate_loss
from nmt.runtime import Ranks, autocast, show_progress
from nmt.seq2seq import Seq2Seq


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Seq2Seq, lr: float) -> torch.optim.Adam:
    """The seed's Adam; the fused kernel updates each tensor in one pass, with no temporaries."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def optimizer_step(
    model: Seq2Seq, optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float
) -> None:
    """Backpropagate, clip the gradient norm to `clip`, update: the seed's step."""
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()


def lr_factor(step: int, p: TrainParams, total_steps: int) -> float:
    """The multiple of train.lr for optimizer step `step` (from 0): a linear warmup to the
    full rate over `p.warmup` steps, then constant, inverse-square-root decay (rate x
    sqrt(warmup / step), Vaswani et al.) or a cosine decay to 0 at `total_steps`."""
    if step < p.warmup:
        return (step + 1) / p.warmup
    if p.schedule == "inverse_sqrt":
        return math.sqrt(max(p.warmup, 1) / (step + 1))
    if p.schedule == "cosine":
        progress = min(1.0, (step - p.warmup) / max(1, total_steps - p.warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


log = logging.getLogger(__name__)
Weights = dict[str, torch.Tensor]


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
    files = {os.path.relpath(sys.modules["__main__"].__file__)}
    files |= {
        module.__file__
        for name, module in sys.modules.items()
        if (name == "nmt" or name.startswith("nmt.")) and getattr(module, "__file__", None)
    }
    package_root = Path(sys.modules["nmt"].__file__).parent.parent
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

    def read_last(self) -> dict[str, Any] | None:
        """The state of the last finished epoch. Tensors and plain values only: a file that
        holds anything else (pickled code) is refused, never run."""
        if not self.last.is_file():
            return None
        try:
            return torch.load(self.last, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            problem = str(err).splitlines()[0]
            raise NMTError(
                f"{self.last} holds more than tensors and plain values ({problem}); "
                f"delete {self.folder} to train afresh"
            ) from None

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
            return torch.load(self.best, map_location="cpu", weights_only=True)
        first = max(1, epochs - self.average + 1)
        return average_weights(
            [
                torch.load(self.epoch(e), map_location="cpu", weights_only=True)
                for e in range(first, epochs + 1)
            ]
        )


@dataclass(frozen=True)
class TrainSummary:
    epochs: int  # completed
    best_epoch: int
    best_valid_loss: float
    averaged_epochs: int = 0  # the model is the mean of this many last epochs; 0: the best one
    averaged_valid_loss: float = math.nan

    @property
    def kept_epoch(self) -> int:
        """The epoch the kept model stands for: the best, or the last of those averaged."""
        return self.epochs if self.averaged_epochs else self.best_epoch

    @property
    def kept_valid_loss(self) -> float:
        return self.averaged_valid_loss if self.averaged_epochs else self.best_valid_loss

    def metrics(self) -> dict[str, float]:
        best = {
            "best_epoch": self.best_epoch,
            "best_valid_loss": self.best_valid_loss,
            "best_valid_ppl": math.exp(self.best_valid_loss),
            "epochs": self.epochs,
        }
        if not self.averaged_epochs:
            return best
        return best | {
            "averaged_epochs": self.averaged_epochs,
            "averaged_valid_loss": self.averaged_valid_loss,
            "averaged_valid_ppl": math.exp(self.averaged_valid_loss),
        }


@dataclass
class Trainer:
    model: Seq2Seq
    train_data: ParallelData
    valid_data: ParallelData
    params: TrainParams
    batch: BatchParams
    seed: int
    run_dir: Path
    fingerprint: str  # settings but train.epochs: more epochs continue a finished run
    ranks: Ranks = field(default_factory=Ranks)
    code: dict[str, str] = field(default_factory=dict)  # `running_code()` of the stage
    epoch: int = 0  # epochs completed
    best_valid: float = math.inf
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.files = RunFiles(self.run_dir, self.params.average)
        self.device = next(self.model.parameters()).device
        self.net: torch.nn.Module = self.model
        if self.ranks.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)
        self.optimizer = make_optimizer(self.model, self.params.lr)
        total_steps = self.params.epochs * len(self.epoch_batches(0))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.params, total_steps)
        )
        self.teacher_forcing_rng = torch.Generator().manual_seed(self.seed)

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The training batches of an epoch (from 0), in order; whole batches, which ranks split."""
        groups = self.train_data.batch_indices(
            self.batch.size, self.batch.pool_factor, self.seed, epoch, self.params.batch_tokens
        )
        groups = groups[: self.params.max_batches] if self.params.max_batches else groups
        return join_small_batches(groups, self.ranks.world)

    def restore(self) -> bool:
        """Resume from last.pt if it was written with the same settings; say so either way."""
        state = self.files.read_last()
        if state is None:
            return False
        last = self.files.last
        if state["fingerprint"] != self.fingerprint:
            log.info(f"train: {last} is from other settings; starting afresh")
            return False
        changed = changed_files(state.get("code", {}), self.code)
        if changed:
            shown = ", ".join(changed[:3]) + (
                f" and {len(changed) - 3} more" if changed[3:] else ""
            )
            log.info(f"train: {last} was written by other code ({shown}); starting afresh")
            return False
        if state["epoch"] > self.params.epochs:
            log.info(
                f"train: {last} is {state['epoch']} epochs in, past train.epochs "
                f"({self.params.epochs}); starting afresh"
            )
            return False
        patience = self.params.patience
        if patience and state["epoch"] - state["best_epoch"] > patience:
            log.info(
                f"train: {last} is {state['epoch'] - state['best_epoch']} epochs past its best, "
                f"more than train.patience ({patience}) allows; starting afresh"
            )
            return False
        self.files.check_kept(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.teacher_forcing_rng.set_state(state["teacher_forcing_rng"])
        torch.set_rng_state(state["torch_rng"][self.ranks.rank])
        dropout.set_state(state["mask_rng"][self.ranks.rank])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_valid, self.best_epoch = state["best_valid"], state["best_epoch"]
        if self.ranks.is_main:
            log.info(f"train: resuming after epoch {self.epoch} from {last}")
        return True

    def _save_last(self) -> None:
        self.files.save_last(
            {
                "fingerprint": self.fingerprint,
                "code": self.code,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "teacher_forcing_rng": self.teacher_forcing_rng.get_state(),
                "epoch": self.epoch,
                "history": self.history,
                "best_valid": self.best_valid,
                "best_epoch": self.best_epoch,
            },
            self.ranks,
        )

    def train_epoch(self) -> tuple[float, int]:
        """One pass over the (bucketed, shuffled) training batches: mean loss per token, tokens."""
        self.model.train()
        groups = self.epoch_batches(self.epoch)
        total, tokens, start = 0.0, 0, time.perf_counter()
        world = self.ranks.world
        bar = tqdm(
            groups,
            desc=f"epoch {self.epoch + 1}",
            unit="batch",
            disable=not (show_progress() and self.ranks.is_main),
        )
        for number, index in enumerate(bar, start=1):
            steps = int(self.train_data.lengths[index, 1].max())
            teacher_force = (
                torch.rand(steps, generator=self.teacher_forcing_rng) < self.params.teacher_forcing
            )
            n = self.train_data.target_tokens(index)
            batch = self.train_data.collate(index[self.ranks.rank :: world]).to(self.device)
            with autocast(self.device, self.params.amp):
                loss = self.net(
                    batch.src,
                    batch.src_len,
                    batch.trg,
                    teacher_force,
                    self.params.label_smoothing,
                    n / world if world > 1 else None,
                )
            batch_loss = self.ranks.mean(loss).item()  # the whole batch's mean
            if not math.isfinite(batch_loss):
                raise NMTError(
                    f"training loss became {batch_loss} in epoch {self.epoch + 1}, "
                    f"batch {number}; stopped, keeping the checkpoints of epoch "
                    f"{self.epoch} in {self.run_dir}; try a lower train.lr"
                )
            optimizer_step(self.model, self.optimizer, loss, self.params.clip)
            self.scheduler.step()
            total, tokens = total + batch_loss * n, tokens + n
            bar.set_postfix(
                loss=f"{total / tokens:.3f}", tok_s=f"{tokens / (time.perf_counter() - start):.0f}"
            )
        return total / tokens, tokens

    def fit(
        self, on_epoch: Callable[[dict[str, float]], None] = lambda record: None
    ) -> TrainSummary:
        """Train the remaining epochs; `on_epoch` gets each epoch's record (for dvclive)."""
        if self.epoch == 0:  # a resumed run restored the dropout draws
            torch.manual_seed(self.seed)
            dropout.seed(self.seed, self.ranks.rank)
        while self.epoch < self.params.epochs and not self.stalled():
            start = time.perf_counter()
            train_loss, tokens = self.train_epoch()
            seconds = time.perf_counter() - start
            valid_loss = evaluate_loss(self.model, self.valid_data, self.batch.size, self.ranks)
            self.epoch += 1
            improved = valid_loss < self.best_valid
            if improved:
                self.best_valid, self.best_epoch = valid_loss, self.epoch
            if self.ranks.is_main:
                self.files.end_epoch(self.epoch, self.model.state_dict(), improved)
            record = {
                "epoch": self.epoch,
                "train_loss": train_loss,
                "train_ppl": math.exp(train_loss),
                "valid_loss": valid_loss,
                "valid_ppl": math.exp(valid_loss),
                "epoch_seconds": seconds,
                "train_tokens_per_second": tokens / seconds,
            }
            self.history.append(record)
            self._save_last()
            if not self.ranks.is_main:
                continue
            on_epoch(record)
            log.info(
                f"train: epoch {self.epoch}: train loss {train_loss:.3f}, valid loss "
                f"{valid_loss:.3f} (ppl {math.exp(valid_loss):.2f}), {seconds:.0f}s"
            )
        if self.stalled() and self.ranks.is_main:
            log.info(
                f"train: no better valid loss in {self.params.patience} epochs (train.patience); "
                f"stopped after epoch {self.epoch} of {self.params.epochs}, best epoch "
                f"{self.best_epoch}"
            )
        summary = TrainSummary(self.epoch, self.best_epoch, self.best_valid)
        if self.params.average > 1 and self.ranks.is_main:  # the other ranks are done
            self.model.load_state_dict(self.final_state())
            averaged = evaluate_loss(self.model, self.valid_data, self.batch.size)
            summary = replace(
                summary,
                averaged_epochs=min(self.params.average, self.epoch),
                averaged_valid_loss=averaged,
            )
        return summary

    def stalled(self) -> bool:
        """Early stopping: the validation loss has not improved for train.patience epochs."""
        patience = self.params.patience
        return bool(patience) and self.epoch - self.best_epoch >= patience

    def final_state(self) -> Weights:
        """The model to keep: the best epoch's, or the mean of the last `average` epochs'."""
        return self.files.final_state(self.epoch)
