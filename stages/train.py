"""Stage `train@<arch>`: train one architecture; the kept model to the package models/<arch>/.
With train.processes > 1 it runs as that many data-parallel ranks under torchrun."""

import sys
from collections.abc import Callable

from dvclive import Live

from nmt.cli import run_stage, stage_arch
from nmt.paths import LIVE
from nmt.run import TrainingRun
from nmt.runtime import (
    check_mixed_precision,
    cpu_info,
    relaunch,
    resolve_device,
    start_ranks,
    stop_ranks,
    under_torchrun,
    use_threads,
)
from nmt.settings import TrainSettings


def curves_to(live: Live) -> Callable[[dict[str, float]], None]:
    """An epoch record's losses and perplexities, logged to dvclive at that epoch's step."""

    def log(record: dict[str, float]) -> None:
        live.step = int(record["epoch"]) - 1  # explicit: a resumed run continues the curve
        for split in ("train", "valid"):
            live.log_metric(f"{split}/loss", record[f"{split}_loss"])
            live.log_metric(f"{split}/ppl", record[f"{split}_ppl"])
        live.next_step()

    return log


def main() -> None:
    arch = stage_arch(__doc__)
    settings = TrainSettings.read(arch)
    train = settings.train
    use_threads(train.threads, settings.threads_key)
    device = resolve_device(settings.device)
    check_mixed_precision(device, train.amp, cpu_info())  # before any rank starts
    if train.processes > 1 and not under_torchrun():
        sys.exit(relaunch(train.processes, sys.argv))
    device, ranks = start_ranks(device, train.processes)
    run = TrainingRun.start(settings, device, ranks)
    if ranks.is_main:  # which writes everything
        with Live(str(LIVE / arch), resume=run.resumed, save_dvc_exp=False, dvcyaml=None) as live:
            summary = run.trainer.fit(on_epoch=curves_to(live))
        run.finish(summary)
    else:
        run.trainer.fit()
    stop_ranks(ranks)


if __name__ == "__main__":
    run_stage(main)
