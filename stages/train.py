"""Stage `train@<arch>`: train one architecture; the kept model to the package models/<arch>/.
With train.processes > 1 it runs as that many data-parallel ranks under torchrun."""

import math
import sys

from dvclive import Live
from nmt.batching import ParallelData
from nmt.checkpoint import save_model
from nmt.cli import run_stage, stage_arch
from nmt.config import fingerprint, load_params
from nmt.io import write_json
from nmt.models import build_model, model_params
from nmt.paths import CHECKPOINTS, IDS, LIVE, LOGS, METRICS, VOCAB, model_path
from nmt.resume import running_code
from nmt.runtime import (
    check_mixed_precision,
    cpu_info,
    relaunch,
    resolve_device,
    start_ranks,
    stop_ranks,
    under_torchrun,
)
from nmt.training import Trainer, seed_everything
from nmt.vocab import load_vocab_pair


def main() -> None:
    arch = stage_arch(__doc__)
    params = load_params()
    arch_params, train_params = model_params(params, arch), params.train_params(arch)
    device = resolve_device(params.device)
    check_mixed_precision(device, train_params.amp, cpu_info())  # before any rank starts
    if train_params.processes > 1 and not under_torchrun():
        sys.exit(relaunch(train_params.processes, sys.argv))
    device, ranks = start_ranks(device, train_params.processes)
    vocab = params.vocab_of(arch)
    vocabs = load_vocab_pair(VOCAB / vocab, params.data.src_lang, params.data.trg_lang)
    sizes, hashes = (len(vocabs[0]), len(vocabs[1])), (vocabs[0].hash, vocabs[1].hash)
    train = ParallelData.load(IDS / vocab, "train", arch_params.reverse_src)
    valid = ParallelData.load(IDS / vocab, "val", arch_params.reverse_src)

    seed_everything(params.seed)
    model = build_model(arch, arch_params, *sizes).to(device)
    if ranks.is_main:
        print(f"train: {arch}: {model.n_parameters():,} trainable parameters on {device}")
    trainer = Trainer(
        model,
        train,
        valid,
        train_params,
        params.batch,
        params.seed,
        CHECKPOINTS / arch,
        fingerprint(
            arch_params, train_params.resume_key(), params.batch, params.seed, hashes, len(train)
        ),
        ranks,
        running_code(),
    )
    resumed = trainer.restore()
    if not ranks.is_main:  # the main rank writes everything
        trainer.fit()
        stop_ranks(ranks)
        return
    with Live(str(LIVE / arch), resume=resumed, save_dvc_exp=False, dvcyaml=None) as live:

        def log(record: dict[str, float]) -> None:
            live.step = int(record["epoch"]) - 1  # explicit: a resumed run continues the curve
            for split in ("train", "valid"):
                live.log_metric(f"{split}/loss", record[f"{split}_loss"])
                live.log_metric(f"{split}/ppl", record[f"{split}_ppl"])
            live.next_step()

        summary = trainer.fit(on_epoch=log)

    model.load_state_dict(trainer.final_state())
    save_model(
        model_path(arch),
        model,
        arch,
        arch_params,
        VOCAB / vocab,
        (params.data.src_lang, params.data.trg_lang),
        vocab=vocab,
        epoch=summary.kept_epoch,
        valid_loss=summary.kept_valid_loss,
    )
    write_json(
        METRICS / f"train_{arch}.json", {"parameters": model.n_parameters(), **summary.metrics()}
    )
    seconds = [r["epoch_seconds"] for r in trainer.history]
    write_json(
        LOGS / f"train_{arch}.json",
        {
            "epoch_seconds": seconds,
            "mean_epoch_seconds": sum(seconds) / len(seconds),
            "train_tokens_per_second": [r["train_tokens_per_second"] for r in trainer.history],
        },
    )
    print(
        f"train: {arch}: best valid loss {summary.best_valid_loss:.3f} "
        f"(ppl {math.exp(summary.best_valid_loss):.2f}) at epoch {summary.best_epoch}"
    )
    if summary.averaged_epochs:
        print(
            f"train: {arch}: the mean of the last {summary.averaged_epochs} epochs' weights: "
            f"valid loss {summary.averaged_valid_loss:.3f} "
            f"(ppl {math.exp(summary.averaged_valid_loss):.2f})"
        )

    stop_ranks(ranks)


if __name__ == "__main__":
    run_stage(main)
