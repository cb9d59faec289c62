"""The seed's training recipe: Adam, cross-entropy over non-pad tokens, per-step teacher forcing,
gradient clipping, and the checkpoint with the best validation loss; and, as options, what
Transformer recipes add: label smoothing, learning rate warmup and decay, batches of a token
budget, and a model averaged over the last epochs' weights.

Training resumes: after every epoch `last.pt` holds the model, optimizer and random states
(`nmt.resume`), so a run that is stopped and started again ends exactly where an
uninterrupted run would.

Data-parallel ranks (`nmt.runtime`) split every batch and DDP averages their gradients; each
rank divides its summed loss by its share of the whole batch's tokens, so the update is the
one a single process makes from the whole batch.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nmt import NMTError, dropout
from nmt.batching import ParallelData, join_small_batches
from nmt.config import BatchParams, TrainParams
from nmt.loss import TrainingLoss, evaluate_loss
from nmt.resume import RunFiles, why_not_resume
from nmt.runtime import Ranks, autocast, show_progress
from nmt.seq2seq import Seq2Seq


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: Seq2Seq, params: TrainParams) -> torch.optim.Adam:
    """The seed's Adam (its betas a param: Transformers often take 0.98 for the second); the
    fused kernel updates each tensor in one pass, with no temporaries."""
    return torch.optim.Adam(model.parameters(), lr=params.lr, betas=params.betas, fused=True)


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
    # The training pairs of an epoch (from 0), where they change every epoch (subword
    # sampling); None: `train_data` every epoch.
    resample: Callable[[int], ParallelData] | None = None
    epoch: int = 0  # epochs completed
    best_valid: float = math.inf
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    _resampled: tuple[int, ParallelData] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.files = RunFiles(self.run_dir, self.params.average)
        self.device = next(self.model.parameters()).device
        self.net: torch.nn.Module = TrainingLoss(self.model, self.params)
        if self.ranks.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = make_optimizer(self.model, self.params)
        total_steps = self.params.epochs * len(self.epoch_batches(0, self.epoch_data(0)))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, self.params, total_steps)
        )
        self.teacher_forcing_rng = torch.Generator().manual_seed(self.seed)

    def epoch_data(self, epoch: int) -> ParallelData:
        """The training pairs of an epoch (from 0); a resampled epoch's are made once, though
        both the schedule's length and the first epoch ask for epoch 0's."""
        if self.resample is None:
            return self.train_data
        if self._resampled is None or self._resampled[0] != epoch:
            self._resampled = epoch, self.resample(epoch)
        return self._resampled[1]

    def epoch_batches(self, epoch: int, data: ParallelData) -> list[np.ndarray]:
        """The training batches of an epoch (from 0), in order; whole batches, which ranks split."""
        groups = data.batch_indices(
            self.batch.size, self.batch.pool_factor, self.seed, epoch, self.params.batch_tokens
        )
        groups = groups[: self.params.max_batches] if self.params.max_batches else groups
        return join_small_batches(groups, self.ranks.world)

    def restore(self) -> bool:
        """Resume from last.pt if it was written with the same settings; say so either way."""
        state = self.files.read_last()
        if state is None:
            return False
        problem = why_not_resume(state, self.fingerprint, self.code, self.params)
        if problem:
            if self.ranks.is_main:
                log.info(f"train: {self.files.last} {problem}; starting afresh")
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
            log.info(f"train: resuming after epoch {self.epoch} from {self.files.last}")
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
        data = self.epoch_data(self.epoch)
        groups = self.epoch_batches(self.epoch, data)
        total, tokens, start = 0.0, 0, time.perf_counter()
        world = self.ranks.world
        bar = tqdm(
            groups,
            desc=f"epoch {self.epoch + 1}",
            unit="batch",
            disable=not (show_progress() and self.ranks.is_main),
        )
        for number, index in enumerate(bar, start=1):
            steps = int(data.lengths[index, 1].max())
            teacher_force = (
                torch.rand(steps, generator=self.teacher_forcing_rng) < self.params.teacher_forcing
            )
            n = data.target_tokens(index)
            batch = data.collate(index[self.ranks.rank :: world]).to(self.device)
            with autocast(self.device, self.params.amp):
                loss, cross_entropy = self.net(
                    batch.src,
                    batch.src_len,
                    batch.trg,
                    teacher_force,
                    n / world if world > 1 else None,
                )
            batch_loss = self.ranks.mean(cross_entropy).item()  # the whole batch's mean
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
        return TrainSummary(self.epoch, self.best_epoch, self.best_valid)

    def keep_model(self, summary: TrainSummary) -> TrainSummary:
        """Load the model to keep (main rank, after `fit`): the best epoch's, or the mean of
        the last `average` epochs', which `summary` then gains the validation loss of."""
        self.model.load_state_dict(self.files.final_state(self.epoch))
        if self.params.average == 1:
            return summary
        return replace(
            summary,
            averaged_epochs=min(self.params.average, self.epoch),
            averaged_valid_loss=evaluate_loss(self.model, self.valid_data, self.batch.size),
        )

    def stalled(self) -> bool:
        """Early stopping: the validation loss has not improved for train.patience epochs."""
        patience = self.params.patience
        return bool(patience) and self.epoch - self.best_epoch >= patience
