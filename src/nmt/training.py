"""The seed's training recipe: Adam, cross-entropy over non-pad tokens, per-step teacher forcing,
gradient clipping, and the checkpoint with the best validation loss.

Training resumes: after every epoch `last.pt` holds the model, optimizer and random states, so a
run that is stopped and started again ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from nmt import NMTError
from nmt.batching import ParallelData
from nmt.config import BatchParams, TrainParams
from nmt.io import save_torch
from nmt.models import Seq2Seq


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Seq2Seq, lr: float) -> torch.optim.Adam:
    """The seed's Adam; the fused kernel updates each tensor in one pass, with no temporaries."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


def show_progress() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@torch.no_grad()
def evaluate_loss(model: Seq2Seq, data: ParallelData, batch_size: int) -> float:
    """Mean cross-entropy per target token, the model feeding back its own predictions."""
    model.eval()
    total = tokens = 0.0
    for index in data.batch_indices(batch_size):
        batch = data.collate(index)
        no_forcing = torch.zeros(batch.trg.shape[0], dtype=torch.bool)
        n = batch.n_trg_tokens
        total += model.loss(batch.src, batch.src_len, batch.trg, no_forcing).item() * n
        tokens += n
    return total / tokens


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
    epoch: int = 0  # epochs completed
    best_valid: float = math.inf
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.optimizer = make_optimizer(self.model, self.params.lr)
        self.teacher_forcing_rng = torch.Generator().manual_seed(self.seed)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def restore(self) -> bool:
        """Resume from last.pt if it was written with the same settings; say so either way."""
        if not self.last_path.is_file():
            return False
        state = torch.load(self.last_path, map_location="cpu", weights_only=False)
        if (
            state["fingerprint"] != self.fingerprint
            or state["epoch"] > self.params.epochs
            or not self.best_path.is_file()
        ):
            print(f"train: {self.last_path} is from other settings; starting afresh")
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.teacher_forcing_rng.set_state(state["teacher_forcing_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.history = state["epoch"], state["history"]
        self.best_valid, self.best_epoch = state["best_valid"], state["best_epoch"]
        print(f"train: resuming after epoch {self.epoch} from {self.last_path}")
        return True

    def _save_last(self) -> None:
        save_torch(
            self.last_path,
            {
                "fingerprint": self.fingerprint,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "teacher_forcing_rng": self.teacher_forcing_rng.get_state(),
                "torch_rng": torch.get_rng_state(),
                "epoch": self.epoch,
                "history": self.history,
                "best_valid": self.best_valid,
                "best_epoch": self.best_epoch,
            },
        )

    def train_epoch(self) -> tuple[float, int]:
        """One pass over the (bucketed, shuffled) training batches: mean loss per token, tokens."""
        self.model.train()
        groups = self.train_data.batch_indices(
            self.batch.size, self.batch.pool_factor, self.seed, self.epoch
        )
        if self.params.max_batches:
            groups = groups[: self.params.max_batches]
        total, tokens, start = 0.0, 0, time.perf_counter()
        bar = tqdm(
            groups, desc=f"epoch {self.epoch + 1}", unit="batch", disable=not show_progress()
        )
        for number, index in enumerate(bar, start=1):
            batch = self.train_data.collate(index)
            teacher_force = (
                torch.rand(batch.trg.shape[0], generator=self.teacher_forcing_rng)
                < self.params.teacher_forcing
            )
            loss = self.model.loss(batch.src, batch.src_len, batch.trg, teacher_force)
            if not torch.isfinite(loss):
                raise NMTError(
                    f"training loss became {loss.item()} in epoch {self.epoch + 1}, "
                    f"batch {number}; stopped, keeping the checkpoints of epoch "
                    f"{self.epoch} in {self.run_dir}; try a lower train.lr"
                )
            self.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.clip)
            self.optimizer.step()
            n = batch.n_trg_tokens
            total, tokens = total + loss.item() * n, tokens + n
            bar.set_postfix(
                loss=f"{total / tokens:.3f}", tok_s=f"{tokens / (time.perf_counter() - start):.0f}"
            )
        return total / tokens, tokens

    def fit(
        self, on_epoch: Callable[[dict[str, float]], None] = lambda record: None
    ) -> dict[str, Any]:
        """Train the remaining epochs; `on_epoch` gets each epoch's record (for dvclive)."""
        if self.epoch == 0:
            torch.manual_seed(self.seed)  # dropout draws from here; a resumed run restored them
        while self.epoch < self.params.epochs:
            start = time.perf_counter()
            train_loss, tokens = self.train_epoch()
            seconds = time.perf_counter() - start
            valid_loss = evaluate_loss(self.model, self.valid_data, self.batch.size)
            self.epoch += 1
            if valid_loss < self.best_valid:
                self.best_valid, self.best_epoch = valid_loss, self.epoch
                save_torch(self.best_path, self.model.state_dict())
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
            on_epoch(record)
            print(
                f"train: epoch {self.epoch}: train loss {train_loss:.3f}, valid loss "
                f"{valid_loss:.3f} (ppl {math.exp(valid_loss):.2f}), {seconds:.0f}s"
            )
        return {
            "best_epoch": self.best_epoch,
            "best_valid_loss": self.best_valid,
            "best_valid_ppl": math.exp(self.best_valid),
            "epochs": self.epoch,
        }

    def best_state(self) -> dict[str, torch.Tensor]:
        return torch.load(self.best_path, map_location="cpu", weights_only=True)
