"""Stage `evaluate@<arch>`: test loss, PPL, BLEU (cased, lowercased, tokenized) and chrF of
greedy and beam search on every test set into results/eval_<arch>.json; the beam
translations into translations/<arch>/; what experiments are compared by, the first test
set's loss, PPL and beam scores, into metrics/eval_<arch>.json (DVC metrics); and the beam
search it ran into the package (models/<arch>/decoding.json), which `translate` then runs."""

import math

from nmt.cli import run_stage, stage_arch
from nmt.evaluation import Scorer
from nmt.io import write_json, write_text
from nmt.loss import evaluate_loss
from nmt.measure import Split, decode_and_score, stage_translator
from nmt.package import Decoding, write_decoding
from nmt.paths import IDS, METRICS, RESULTS, TRANSLATIONS, model_path

COMPARED_SCORES = ("bleu", "bleu_tokenized", "chrf")  # of beam search


def main() -> None:
    arch = stage_arch(__doc__)
    settings, translator = stage_translator(arch)
    evaluate = settings.evaluate
    results: dict[str, dict] = {}
    signatures: dict[str, str] = {}  # how sacreBLEU scored: the same for every test set
    for name in evaluate.test_sets:
        split = Split.load(settings, name)
        score = Scorer(split.references, settings.langs[1])
        data = translator.split(IDS / settings.vocab, name)
        loss = evaluate_loss(translator.model, data, evaluate.batch_size)
        results[name] = {"loss": loss, "ppl": math.exp(loss)}
        outputs = {}
        for search, beam_size in (("greedy", 1), ("beam", evaluate.beam_size)):
            outputs[search], results[name][search], signatures = decode_and_score(
                translator, split, evaluate.search(beam_size), score, f"{arch} {name} {search}"
            )
        write_text(TRANSLATIONS / arch / f"{name}.txt", "".join(f"{t}\n" for t in outputs["beam"]))
        greedy, beam = results[name]["greedy"], results[name]["beam"]
        print(
            f"evaluate: {arch}: {name}: loss {loss:.3f} (ppl {math.exp(loss):.2f}), "
            f"BLEU greedy {greedy['bleu']:.2f} beam {beam['bleu']:.2f} "
            f"(lowercased {beam['bleu_lowercase']:.2f}, tokenized {beam['bleu_tokenized']:.2f}), "
            f"chrF {beam['chrf']:.2f}"
        )
    write_json(RESULTS / f"eval_{arch}.json", {**results, "signatures": signatures})
    first = evaluate.test_sets[0]
    compared = {key: results[first][key] for key in ("loss", "ppl")}
    compared |= {key: results[first]["beam"][key] for key in COMPARED_SCORES}
    write_json(METRICS / f"eval_{arch}.json", {first: compared})
    write_decoding(model_path(arch), Decoding.of(evaluate))


if __name__ == "__main__":
    run_stage(main)
