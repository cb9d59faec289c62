import matplotlib.pyplot as plt
import pytest
import sacrebleu
import torch

from nmt.evaluation import score_translations
from nmt.plots import plot_attention, plot_curves
from nmt.tokenization import detokenize, tokenize

REFERENCES = ["A man rides a bike.", "Two dogs play in the snow!", "The dog's ball isn't red."]


def test_detokenize_undoes_the_english_tokenizer():
    for line in [*REFERENCES, "A child (in red) sits: he's 5, and they're $3 away; why?"]:
        assert detokenize(tokenize([line], "en")[0]) == line.lower()


def test_identical_translations_score_100():
    tokens = tokenize(REFERENCES, "en")
    scores, signatures = score_translations(tokens, REFERENCES, tokens)
    assert scores == pytest.approx({"bleu": 100.0, "bleu_tokenized": 100.0, "chrf": 100.0})
    assert "case:lc" in signatures["bleu"] and "tok:13a" in signatures["bleu"]
    assert "tok:none" in signatures["bleu_tokenized"]
    assert signatures["chrf"].startswith("nrefs:1|case:lc")


def test_tokenized_bleu_of_a_hand_computed_case():
    # n-gram precisions 5/6, 3/5, 2/4, 1/3, no brevity penalty
    hypothesis = [["the", "cat", "sat", "on", "the", "mat"]]
    reference = [["the", "cat", "sat", "on", "a", "mat"]]
    scores, _ = score_translations(hypothesis, ["The cat sat on a mat"], reference)
    assert scores["bleu_tokenized"] == pytest.approx(
        100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-9
    )


def test_sacrebleu_scores_equal_sacrebleus_own_on_detokenized_text():
    hypotheses = [["a", "man", "rides", "a", "bicycle", "."], ["two", "dogs", "play", "!"]]
    references = REFERENCES[:2]
    scores, _ = score_translations(hypotheses, references, tokenize(references, "en"))
    text = ["a man rides a bicycle.", "two dogs play!"]
    assert scores["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(text, [references], lowercase=True).score
    )
    assert scores["chrf"] == pytest.approx(
        sacrebleu.corpus_chrf(text, [[r.lower() for r in references]]).score
    )
    assert 0 < scores["bleu"] < 100


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        score_translations([["a"]], REFERENCES[:2], [["a"], ["b"]])


def test_attention_heatmap_is_a_png(tmp_path):
    weights = torch.softmax(torch.randn(3, 4), 1)
    plot_attention(
        ["<sos>", "ein", "hund", "<eos>"], ["a", "dog", "<eos>"], weights, tmp_path / "a.png"
    )
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temporary file left
    with pytest.raises(ValueError, match=r"weights \(3, 4\) for 2 x 4 words"):
        plot_attention(["a", "b", "c", "d"], ["x", "y"], weights, tmp_path / "b.png")


def test_training_curves_are_one_png_of_every_architecture(tmp_path):
    for arch, losses in {"gru": [5.0, 4.0, 3.5], "transformer": [3.0, 2.0]}.items():
        for split in ("train", "valid"):
            folder = tmp_path / arch / "plots/metrics" / split
            folder.mkdir(parents=True)
            rows = "".join(f"{step}\t{loss}\n" for step, loss in enumerate(losses))
            (folder / "loss.tsv").write_text("step\tloss\n" + rows)
    out = tmp_path / "curves.png"
    plot_curves({arch: tmp_path / arch for arch in ("gru", "transformer")}, out)
    image = plt.imread(out)
    assert image.shape[:2] == (400, 1000)  # 10 x 4 inches at 100 dpi
    with pytest.raises(FileNotFoundError):
        plot_curves({"lstm": tmp_path / "lstm"}, tmp_path / "none.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "gru", "transformer"]
