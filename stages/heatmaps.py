"""Stage `heatmaps@<arch>`: attention heatmaps of the first sentences of the first test set
(greedy translations) into plots/<arch>/<n>.png, for `dvc plots show`. A model without
attention weights (the LSTM, Cho's GRU) gets an empty folder."""

import itertools

from nmt.cli import run_stage, stage_arch
from nmt.measure import stage_translator
from nmt.paths import PLOTS, RAW
from nmt.plots import plot_translation
from nmt.tokenization import iter_lines


def main() -> None:
    arch = stage_arch(__doc__)
    settings, translator = stage_translator(arch)
    evaluate = settings.evaluate
    test_set = evaluate.test_sets[0]
    source = RAW / f"{test_set}.{settings.langs[0]}"
    lines = list(itertools.islice(iter_lines(source), evaluate.heatmaps))
    greedy = evaluate.search(beam_size=1, length_penalty=0.0)
    found = [best for best, *_ in translator.translate(lines, greedy)]
    out = PLOTS / arch
    out.mkdir(parents=True, exist_ok=True)  # the stage's output, even with nothing to draw
    drawn = [(s, h) for s, h in zip(lines, found, strict=True) if h.attention is not None]
    for number, (line, hypothesis) in enumerate(drawn):
        plot_translation(translator, line, hypothesis, out / f"{test_set}_{number}.png")
    print(f"heatmaps: {arch}: {len(drawn)} heatmaps in {out}/")


if __name__ == "__main__":
    run_stage(main)
