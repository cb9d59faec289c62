"""One architecture's training as the pipeline runs it: the data, model and trainer that
params.yaml describes, and what the run leaves behind (the model package, its metrics and
epoch log). `stages/train.py` drives it; each data-parallel rank makes its own."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nmt.batching import ParallelData
from nmt.config import fingerprint
from nmt.io import write_json
from nmt.models import build_model
from nmt.package import Trained, save_model
from nmt.paths import CHECKPOINTS, IDS, LOGS, METRICS, RAW, VOCAB, model_path
from nmt.resegment import SampledSegmentations
from nmt.resume import running_code
from nmt.runtime import Ranks
from nmt.settings import TrainSettings
from nmt.training import Trainer, TrainSummary, seed_everything
from nmt.vocab import load_vocab_pair


@dataclass
class TrainingRun:
    settings: TrainSettings
    trainer: Trainer
    resumed: bool  # from the last epoch's checkpoint

    @classmethod
    def start(cls, settings: TrainSettings, device: torch.device, ranks: Ranks) -> TrainingRun:
        """Load the data, build the model (seeded), and resume from its checkpoint if the
        settings and code that wrote it are these."""
        arch, arch_params, train_params = settings.arch, settings.model, settings.train
        vocabs = load_vocab_pair(VOCAB / settings.vocab, *settings.langs)
        sizes, hashes = (len(vocabs[0]), len(vocabs[1])), (vocabs[0].hash, vocabs[1].hash)
        train = ParallelData.load(IDS / settings.vocab, "train", arch_params.reverse_src)
        valid = ParallelData.load(IDS / settings.vocab, "val", arch_params.reverse_src)
        resample = None
        if train_params.subword_sampling:
            resample = SampledSegmentations.of_split(
                RAW,
                "train",
                settings.langs,
                vocabs,
                train_params.subword_sampling,
                settings.seed,
                settings.max_len,
                train,
            ).epoch
        seed_everything(settings.seed)
        model = build_model(arch, arch_params, *sizes).to(device)
        if ranks.is_main:
            print(f"train: {arch}: {model.n_parameters():,} trainable parameters on {device}")
        key = (arch_params, train_params.resume_key(), settings.batch, settings.seed, hashes)
        trainer = Trainer(
            model,
            train,
            valid,
            train_params,
            settings.batch,
            seed=settings.seed,
            run_dir=CHECKPOINTS / arch,
            fingerprint=fingerprint(*key, len(train)),
            ranks=ranks,
            code=running_code(),
            resample=resample,
        )
        return cls(settings, trainer, trainer.restore())

    def finish(self, summary: TrainSummary) -> None:
        """Keep the model (best or averaged) as the package, with its metrics and epoch log."""
        summary = self.trainer.keep_model(summary)
        settings, model = self.settings, self.trainer.model
        arch, vocab_dir = settings.arch, VOCAB / settings.vocab
        trained = Trained(epoch=summary.kept_epoch, valid_loss=summary.kept_valid_loss)
        save_model(
            model_path(arch), model, arch, settings.model, vocab_dir, settings.langs, trained
        )
        metrics = {"parameters": model.n_parameters(), **summary.metrics()}
        write_json(METRICS / f"train_{arch}.json", metrics)
        history = self.trainer.history
        seconds = [r["epoch_seconds"] for r in history]
        write_json(
            LOGS / f"train_{arch}.json",
            {
                "epoch_seconds": seconds,
                "mean_epoch_seconds": sum(seconds) / len(seconds),
                "train_tokens_per_second": [r["train_tokens_per_second"] for r in history],
            },
        )
        best = summary.best_valid_loss
        print(
            f"train: {arch}: best valid loss {best:.3f} (ppl {math.exp(best):.2f}) "
            f"at epoch {summary.best_epoch}"
        )
        if summary.averaged_epochs:
            averaged = summary.averaged_valid_loss
            print(
                f"train: {arch}: the mean of the last {summary.averaged_epochs} epochs' "
                f"weights: valid loss {averaged:.3f} (ppl {math.exp(averaged):.2f})"
            )
