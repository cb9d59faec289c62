"""Translation speed and quality of each engine on one test set, measured in one run.

For every trained architecture of the pipeline (models/<arch>), our PyTorch batched search;
for the Transformer also its CTranslate2 export (exports/transformer) in float32 and int8,
each with one batch at a time on all threads and with a batch per thread (the default).
All use the same beam size, batch size and thread count; each row reports sentences per
second (the best of --repeats timed passes over the whole test set, after a warm-up), its
ratio to our PyTorch Transformer, and sacreBLEU (cased) and tokenized BLEU of its output.

    python bench/translate_speed.py [--test-set test_2016_flickr] [--beam 5] [--out speed.json]

CTranslate2 ranks beams by log-probability / length ** alpha, ours by GNMT's penalty, so
at alpha > 0 the two engines may choose other beams; --alpha 0 makes them rank alike.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable

import torch

from nmt.config import load_params
from nmt.evaluation import score_translations
from nmt.export import CTranslate2Translator
from nmt.io import write_json
from nmt.paths import EXPORTS, RAW, model_path
from nmt.runtime import describe
from nmt.search import SearchSettings
from nmt.tokenization import read_lines
from nmt.translator import Engine, Translator


def timed(translate: Callable[[list[str]], list[str]], lines: list[str], repeats: int):
    """The outputs and the best wall time of `repeats` passes, after a warm-up pass."""
    translate(lines[:32])
    best, outputs = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = translate(lines)
        best = min(best, time.perf_counter() - start)
    return outputs, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test-set", default="test_2016_flickr")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--alpha", type=float, help="length penalty (default: params.yaml's)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--archs", nargs="+", help="default: every trained architecture")
    parser.add_argument("--out", help="the table as JSON")
    args = parser.parse_args()
    params = load_params()
    alpha = params.evaluate.length_penalty if args.alpha is None else args.alpha
    lines = read_lines(RAW / f"{args.test_set}.{params.data.src_lang}")
    references = read_lines(RAW / f"{args.test_set}.{params.data.trg_lang}")
    settings = SearchSettings(args.beam, alpha, params.evaluate.max_len, args.batch_size)
    machine = describe()
    print(f"{machine['cpu']} ({', '.join(machine['flags'])}), {machine['torch_threads']} threads")

    engines: list[tuple[str, str, Engine]] = []
    for arch in args.archs or [a for a in params.archs if model_path(a).is_dir()]:
        engines.append((arch, "pytorch", Translator.load(model_path(arch), arch)))
        if (EXPORTS / arch).is_dir():
            for compute_type, workers in itertools.product(("float32", "int8"), (1, None)):
                loaded = CTranslate2Translator.load(EXPORTS / arch, compute_type, workers)
                layout = f"{loaded.workers} batch{'es' if loaded.workers > 1 else ''} at once"
                engines.append((arch, f"ctranslate2 {compute_type}, {layout}", loaded))
    rows = []
    for arch, engine, translator in engines:

        def translate(batch: list[str], translator=translator) -> list[str]:
            return [translator.text(best) for best, *_ in translator.translate(batch, settings)]

        with torch.inference_mode():
            outputs, seconds = timed(translate, lines, args.repeats)
        scores, _ = score_translations(outputs, references, params.data.trg_lang)
        rows.append(
            {
                "arch": arch,
                "engine": engine,
                "sentences_per_second": len(lines) / seconds,
                "bleu": scores["bleu"],
                "bleu_tokenized": scores["bleu_tokenized"],
            }
        )
    reference = next((r for r in rows if r["arch"] == "transformer"), rows[0])
    print(f"{args.test_set}, beam {args.beam}, length penalty {alpha}, batch {args.batch_size}")
    print("| arch | engine | sentences/s | x ours | BLEU | tokenized BLEU |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        row["ratio"] = row["sentences_per_second"] / reference["sentences_per_second"]
        print(
            f"| {row['arch']} | {row['engine']} | {row['sentences_per_second']:.1f} | "
            f"{row['ratio']:.2f} | {row['bleu']:.2f} | {row['bleu_tokenized']:.2f} |"
        )
    if args.out:
        write_json(args.out, {"machine": machine, "settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
