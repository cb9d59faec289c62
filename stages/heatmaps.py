"""Stage `heatmaps@<arch>`: attention heatmaps of the first sentences of the first test set
(greedy translations) into plots/<arch>/<n>.png, for `dvc plots show`."""

import argparse
from pathlib import Path

import pandas as pd

from nmt.cli import run_stage
from nmt.config import ARCHS, load_params
from nmt.runtime import resolve_device
from nmt.translate import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arch", choices=ARCHS)
    arch = parser.parse_args().arch
    params = load_params()
    src_lang, settings = params.data.src_lang, params.evaluate
    translator = Translator.load(
        Path("models") / f"{arch}.pt",
        Path("data/vocab"),
        src_lang,
        params.data.trg_lang,
        arch,
        resolve_device(params.device),
    )
    test_set = settings.test_sets[0]
    frame = pd.read_parquet(Path("data/tokens") / f"{test_set}.parquet")
    sentences = [list(s) for s in frame[src_lang].head(settings.heatmaps)]
    found = translator.translate(sentences, 1, settings.max_len, 0.0)
    out = Path("plots") / arch
    out.mkdir(parents=True, exist_ok=True)  # the stage's output, even with no heatmaps asked
    for number, (sentence, hypothesis) in enumerate(zip(sentences, found, strict=True)):
        translator.plot(sentence, hypothesis, out / f"{test_set}_{number}.png")
    print(f"heatmaps: {arch}: {len(found)} heatmaps in {out}/")


if __name__ == "__main__":
    run_stage(main)
