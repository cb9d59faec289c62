"""One architecture's training as the pipeline runs it: the data, model and trainer that
params.yaml describes, and what the run leaves behind (the model package, its metrics and
epoch log). `stages/train.py` drives it; each data-parallel rank makes its own."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nmt.batching import ParallelData
from nmt.checkpoint import save_model
from nmt.config import ModelParams, Params, fingerprint
from nmt.io import write_json
from nmt.models import build_model, model_params
from nmt.paths import CHECKPOINTS, IDS, LOGS, METRICS, RAW, VOCAB, model_path
from nmt.resegment import SampledSegmentations
from nmt.resume import running_code
from nmt.runtime import Ranks
from nmt.training import Trainer, TrainSummary, seed_everything
from nmt.vocab import load_vocab_pair


@dataclass
class TrainingRun:
    arch: str
    params: Params
    model_params: ModelParams
    trainer: Trainer
    resumed: bool  # from the last epoch's checkpoint

    @classmethod
    def start(cls, params: Params, arch: str, device: torch.device, ranks: Ranks) -> TrainingRun:
        """Load the data, build the model (seeded), and resume from its checkpoint if the
        settings and code that wrote it are these."""
        arch_params, train_params = model_params(params, arch), params.train_params(arch)
        vocab = params.vocab_of(arch)
        vocabs = load_vocab_pair(VOCAB / vocab, params.data.src_lang, params.data.trg_lang)
        sizes, hashes = (len(vocabs[0]), len(vocabs[1])), (vocabs[0].hash, vocabs[1].hash)
        train = ParallelData.load(IDS / vocab, "train", arch_params.reverse_src)
        valid = ParallelData.load(IDS / vocab, "val", arch_params.reverse_src)
        langs = (params.data.src_lang, params.data.trg_lang)
        resample = None
        if train_params.subword_sampling:
            resample = SampledSegmentations.of_split(
                RAW,
                "train",
                langs,
                vocabs,
                train_params.subword_sampling,
                params.seed,
                params.data.max_len,
                train,
            ).epoch
        seed_everything(params.seed)
        model = build_model(arch, arch_params, *sizes).to(device)
        if ranks.is_main:
            print(f"train: {arch}: {model.n_parameters():,} trainable parameters on {device}")
        settings = (arch_params, train_params.resume_key(), params.batch, params.seed, hashes)
        trainer = Trainer(
            model,
            train,
            valid,
            train_params,
            params.batch,
            seed=params.seed,
            run_dir=CHECKPOINTS / arch,
            fingerprint=fingerprint(*settings, len(train)),
            ranks=ranks,
            code=running_code(),
            resample=resample,
        )
        return cls(arch, params, arch_params, trainer, trainer.restore())

    def finish(self, summary: TrainSummary) -> None:
        """Keep the model (best or averaged) as the package, with its metrics and epoch log."""
        summary = self.trainer.keep_model(summary)
        model, arch, vocab = self.trainer.model, self.arch, self.params.vocab_of(self.arch)
        langs = (self.params.data.src_lang, self.params.data.trg_lang)
        save_model(
            model_path(arch),
            model,
            arch,
            self.model_params,
            VOCAB / vocab,
            langs,
            vocab=vocab,
            epoch=summary.kept_epoch,
            valid_loss=summary.kept_valid_loss,
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
