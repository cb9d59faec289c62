import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import sacrebleu
import torch

from nmt.evaluation import paired_bootstrap, score_translations
from nmt.plots import plot_attention, plot_curves
from nmt.tokenization import detokenize, tokenize

REFERENCES = ["A man rides a bike.", "Two dogs play in the snow!", "The dog's ball isn't red."]


def test_detokenize_undoes_the_english_tokenizer():
    for line in [*REFERENCES, "A child (in red) sits: he's 5, and they're $3 away; why?"]:
        assert detokenize(tokenize([line], "en")[0]) == line


def test_identical_translations_score_100():
    scores, signatures = score_translations(REFERENCES, REFERENCES, "en")
    assert scores == pytest.approx(
        {"bleu": 100.0, "bleu_lowercase": 100.0, "bleu_tokenized": 100.0, "chrf": 100.0}
    )
    assert "case:mixed" in signatures["bleu"] and "tok:13a" in signatures["bleu"]
    assert "case:lc" in signatures["bleu_lowercase"]
    assert "tok:none" in signatures["bleu_tokenized"]
    assert signatures["chrf"].startswith("nrefs:1|case:mixed")


def test_case_counts_only_where_it_should():
    lowered = [line.lower() for line in REFERENCES]
    scores, _ = score_translations(lowered, REFERENCES, "en")
    assert scores["bleu"] < 80 and scores["chrf"] < 100
    assert scores["bleu_lowercase"] == scores["bleu_tokenized"] == pytest.approx(100.0)


def test_tokenized_bleu_of_a_hand_computed_case():
    # spaCy splits the final period: n-gram precisions 6/7, 4/6, 2/5, 1/4, no brevity penalty
    scores, _ = score_translations(["The cat sat on the mat."], ["The cat sat on a mat."], "en")
    assert scores["bleu_tokenized"] == pytest.approx(
        100 * (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25, rel=1e-9
    )


def test_scores_equal_sacrebleus_own():
    hypotheses = ["A man rides a bicycle.", "two dogs play!"]
    references = REFERENCES[:2]
    scores, _ = score_translations(hypotheses, references, "en")
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert scores["bleu_lowercase"] == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score
    )
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert 0 < scores["bleu"] < scores["bleu_lowercase"] < 100


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="1 hypotheses for 2 references"):
        score_translations(["a"], REFERENCES[:2], "en")


def test_paired_bootstrap_tells_a_real_difference_from_none():
    references = [f"A man number {i} rides a red bike in the park." for i in range(200)]
    good = [r if i % 4 else r.replace("red", "blue") for i, r in enumerate(references)]
    bad = [r if i % 2 else "A dog." for i, r in enumerate(references)]
    for c in paired_bootstrap(good, bad, references, "en", samples=200):
        assert c.system < c.baseline and c.p_value < 0.01, c
    # (sacreBLEU gives identical systems the smallest p-value: a zero difference is not chance)
    same = paired_bootstrap(good, list(good), references, "en", samples=200)
    assert [c.metric for c in same] == ["bleu", "bleu_lowercase", "chrf", "bleu_tokenized"]
    assert all(c.system == c.baseline for c in same), same
    # a difference too small for 200 sentences to show: one sentence changed
    close = [*good[:-1], "A man rides a bike."]
    assert all(c.p_value > 0.05 for c in paired_bootstrap(good, close, references, "en", 200))


def test_compare_command_prints_a_table_and_refuses_unequal_files(tmp_path):
    for name, lines in (("a", REFERENCES), ("b", ["A man.", "Dogs!", "No."]), ("ref", REFERENCES)):
        (tmp_path / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    command = [str(Path(sys.executable).parent / "compare-translations")]
    result = subprocess.run(
        [*command, "a", "b", "ref", "--samples", "50"], cwd=tmp_path, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    rows = result.stdout.decode().splitlines()
    assert rows[0].split() == ["metric", "baseline", "system", "95%", "CI", "p"]
    assert rows[1].split()[:2] == ["bleu", "100.00"] and len(rows) == 5
    (tmp_path / "b").write_text("A man.\n", encoding="utf-8")
    result = subprocess.run([*command, "a", "b", "ref"], cwd=tmp_path, capture_output=True)
    assert result.returncode == 1
    assert result.stderr.decode() == "error: b has 1 lines, the reference 3\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a", "a", "ref", "--lang", "zz"), "--lang 'zz' is no language spaCy tokenizes"),
        (("a", "folder", "ref"), "folder is a folder; name a file"),
        (("a", "a", "folder"), "folder is a folder; name a file"),
        (("a", "a", "ref", "--samples", "0"), "--samples must be >= 1"),
    ],
)
def test_compare_command_bad_input_is_one_line(tmp_path, args, message):
    for name in ("a", "ref"):
        (tmp_path / name).write_text("".join(f"{line}\n" for line in REFERENCES), "utf-8")
    (tmp_path / "folder").mkdir()
    command = [str(Path(sys.executable).parent / "compare-translations"), *args]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {message}") and result.stderr.count("\n") == 1


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
