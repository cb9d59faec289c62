"""Stage `evaluate@<arch>`: test loss, PPL, BLEU (cased, lowercased, tokenized) and chrF of
greedy and beam search on every test set into metrics/eval_<arch>.json; the beam
translations into translations/<arch>/."""

import math

from nmt.batching import ParallelData
from nmt.cli import run_stage, stage_arch
from nmt.config import load_params
from nmt.evaluation import Scorer
from nmt.io import write_json, write_text
from nmt.loss import evaluate_loss
from nmt.paths import IDS, METRICS, RAW, TRANSLATIONS
from nmt.tokenization import read_lines
from nmt.translate import Translator


def main() -> None:
    arch = stage_arch(__doc__)
    params = load_params()
    settings, trg_lang = params.evaluate_params(arch), params.data.trg_lang
    translator = Translator.of_pipeline(params, arch)
    results: dict[str, dict] = {}
    signatures: dict[str, str] = {}  # how sacreBLEU scored: the same for every test set
    for name in settings.test_sets:
        data = ParallelData.load(IDS / params.vocab_of(arch), name, translator.params.reverse_src)
        score = Scorer(read_lines(RAW / f"{name}.{trg_lang}"), trg_lang)
        loss = evaluate_loss(translator.model, data, settings.batch_size)
        results[name] = {"loss": loss, "ppl": math.exp(loss)}
        outputs = {}
        for search, beam_size in (("greedy", 1), ("beam", settings.beam_size)):
            found = translator.translate_data(
                data,
                beam_size=beam_size,
                max_len=settings.max_len,
                alpha=settings.length_penalty,
                batch_size=settings.batch_size,
                progress=f"{arch} {name} {search}",
            )
            outputs[search] = [translator.text(h) for h in found]
            results[name][search], signatures = score(outputs[search])
        write_text(TRANSLATIONS / arch / f"{name}.txt", "".join(f"{t}\n" for t in outputs["beam"]))
        greedy, beam = results[name]["greedy"], results[name]["beam"]
        print(
            f"evaluate: {arch}: {name}: loss {loss:.3f} (ppl {math.exp(loss):.2f}), "
            f"BLEU greedy {greedy['bleu']:.2f} beam {beam['bleu']:.2f} "
            f"(lowercased {beam['bleu_lowercase']:.2f}, tokenized {beam['bleu_tokenized']:.2f}), "
            f"chrF {beam['chrf']:.2f}"
        )
    write_json(METRICS / f"eval_{arch}.json", {**results, "signatures": signatures})


if __name__ == "__main__":
    run_stage(main)
