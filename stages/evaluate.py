"""Stage `evaluate@<arch>`: test loss, PPL, BLEU (cased, lowercased, tokenized) and chrF of
greedy and beam search on every test set into results/eval_<arch>.json; the beam
translations into translations/<arch>/; and what experiments are compared by, the first test
set's loss, PPL and beam scores, into metrics/eval_<arch>.json (DVC metrics)."""

import math

from nmt.batching import ParallelData
from nmt.cli import run_stage, stage_arch
from nmt.config import load_params
from nmt.evaluation import Scorer
from nmt.io import write_json, write_text
from nmt.loss import evaluate_loss
from nmt.paths import IDS, METRICS, RAW, RESULTS, TRANSLATIONS
from nmt.runtime import use_threads
from nmt.tokenization import read_lines
from nmt.translator import Translator

COMPARED_SCORES = ("bleu", "bleu_tokenized", "chrf")  # of beam search


def main() -> None:
    arch = stage_arch(__doc__)
    params = load_params()
    settings, trg_lang = params.evaluate_params(arch), params.data.trg_lang
    use_threads(settings.threads, params.key(arch, "evaluate", "threads"))
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
                data, settings.search(beam_size), progress=f"{arch} {name} {search}"
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
    write_json(RESULTS / f"eval_{arch}.json", {**results, "signatures": signatures})
    first = settings.test_sets[0]
    compared = {key: results[first][key] for key in ("loss", "ppl")}
    compared |= {key: results[first]["beam"][key] for key in COMPARED_SCORES}
    write_json(METRICS / f"eval_{arch}.json", {first: compared})


if __name__ == "__main__":
    run_stage(main)
