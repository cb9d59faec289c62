"""Stage `evaluate@<arch>`: test loss, PPL, BLEU and chrF of greedy and beam search on every
test set into metrics/eval_<arch>.json; the beam translations into translations/<arch>/."""

import argparse
import math
from pathlib import Path

import pandas as pd

from nmt.batching import ParallelData
from nmt.cli import run_stage
from nmt.config import ARCHS, load_params
from nmt.evaluation import score_translations
from nmt.io import write_json, write_text
from nmt.loss import evaluate_loss
from nmt.runtime import resolve_device
from nmt.tokenization import detokenize, read_lines
from nmt.translate import Translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("arch", choices=ARCHS)
    arch = parser.parse_args().arch
    params = load_params()
    src_lang, trg_lang, settings = params.data.src_lang, params.data.trg_lang, params.evaluate
    translator = Translator.load(
        Path("models") / f"{arch}.pt",
        Path("data/vocab"),
        src_lang,
        trg_lang,
        arch,
        resolve_device(params.device),
    )
    results: dict[str, dict] = {}
    for name in settings.test_sets:
        data = ParallelData.load(
            Path("data/ids") / f"{name}.parquet", translator.params.reverse_src
        )
        references = read_lines(Path("data/raw") / f"{name}.{trg_lang}")
        reference_tokens = pd.read_parquet(Path("data/tokens") / f"{name}.parquet")[trg_lang]
        loss = evaluate_loss(translator.model, data, settings.batch_size)
        results[name] = {"loss": loss, "ppl": math.exp(loss)}
        for search, beam_size in (("greedy", 1), ("beam", settings.beam_size)):
            found = translator.translate_data(
                data, beam_size, settings.max_len, settings.length_penalty, settings.batch_size
            )
            words = [translator.words(h) for h in found]
            scores, signatures = score_translations(words, references, reference_tokens.tolist())
            results[name][search] = scores
        write_text(
            Path("translations") / arch / f"{name}.txt",
            "".join(detokenize(w) + "\n" for w in words),
        )
        beam = results[name]["beam"]
        print(
            f"evaluate: {arch}: {name}: loss {loss:.3f} (ppl {math.exp(loss):.2f}), "
            f"BLEU greedy {results[name]['greedy']['bleu']:.2f} beam {beam['bleu']:.2f} "
            f"(tokenized {beam['bleu_tokenized']:.2f}), chrF {beam['chrf']:.2f}"
        )
    write_json(Path("metrics") / f"eval_{arch}.json", {**results, "signatures": signatures})


if __name__ == "__main__":
    run_stage(main)
