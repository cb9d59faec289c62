import json
import subprocess
import sys
from pathlib import Path

import pytest

from nmt import MissingInput, NMTError
from nmt.paths import made_by
from nmt.tokenization import iter_pairs, tokenize, tokenized_chunks

ROOT = Path(__file__).resolve().parents[1]


def test_tokenize_splits_punctuation_and_clitics_and_keeps_case():
    assert tokenize(["Zwei Männer stehen am Herd."], "de") == [
        ["Zwei", "Männer", "stehen", "am", "Herd", "."]
    ]
    assert tokenize(["A man's dog, running."], "en") == [
        ["A", "man", "'s", "dog", ",", "running", "."]
    ]


def write_pair(path, de: bytes, en: bytes):
    (path / "train.de").write_bytes(de)
    (path / "train.en").write_bytes(en)


def test_tokenized_chunks_strip_lines(tmp_path):
    write_pair(tmp_path, "Ein Hund läuft. \nZwei Katzen.\n".encode(), b"A dog runs.\nTwo cats.\n")
    (frame,) = tokenized_chunks(tmp_path, "train", "de", "en")
    assert frame["de"].tolist() == [["Ein", "Hund", "läuft", "."], ["Zwei", "Katzen", "."]]
    assert frame["en"].tolist() == [["A", "dog", "runs", "."], ["Two", "cats", "."]]


def test_mismatched_line_counts(tmp_path):
    write_pair(tmp_path, b"Eins.\nZwei.\n", b"One.\n")
    with pytest.raises(NMTError, match="split 'train' is misaligned: 2 de lines but 1 en lines"):
        list(iter_pairs(tmp_path, "train", "de", "en"))


def test_blank_line_is_named(tmp_path):
    write_pair(tmp_path, b"Eins.\n\nDrei.\n", b"One.\nTwo.\nThree.\n")
    with pytest.raises(NMTError, match=r"train.de line 2 is blank"):
        list(iter_pairs(tmp_path, "train", "de", "en"))


def test_non_utf8_is_named(tmp_path):
    write_pair(tmp_path, b"Eins.\nZw\xffei.\n", b"One.\nTwo.\n")
    with pytest.raises(NMTError, match=r"train.de line 2 is not valid UTF-8"):
        list(iter_pairs(tmp_path, "train", "de", "en"))


def test_empty_and_missing_files(tmp_path):
    write_pair(tmp_path, b"", b"")
    with pytest.raises(NMTError, match=r"train\.de is empty"):
        list(iter_pairs(tmp_path, "train", "de", "en"))
    with pytest.raises(MissingInput, match=r"val.de not found$"):
        list(iter_pairs(tmp_path, "val", "de", "en"))


def test_tokenize_memory_stays_flat_while_streaming(raw_dir, tmp_path):
    """The cheap version of bench/tokenize_memory.py (which measures 1M pairs)."""
    out = tmp_path / "memory.json"
    command = [sys.executable, str(ROOT / "bench/tokenize_memory.py"), "--raw", str(raw_dir)]
    command += ["--pairs", "20000", "80000", "--whole-up-to", "80000", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    peaks = {
        pairs: {mode: row[mode]["peak_rss_mib"] for mode in row}
        for pairs, row in json.loads(out.read_text())["pairs"].items()
    }
    assert set(peaks) == {"20000", "29000", "80000"}
    stream = peaks["80000"]["stream"] - peaks["20000"]["stream"]  # chunks of 10,000 pairs
    whole = peaks["80000"]["whole"] - peaks["20000"]["whole"]
    # measured: +15 to +33 MiB (allocator noise) against +140 to +160 MiB
    assert stream < 45 and stream < whole / 3
    assert peaks["80000"]["stream"] > peaks["80000"]["imports"]


@pytest.mark.parametrize(
    ("path", "stage"),
    [
        ("data/raw/val.de", "download"),
        ("data/tokens/train.parquet", "tokenize"),
        ("data/vocab/words/en.parquet", "vocab@words"),
        ("data/vocab/subwords/tokenizer.json", "vocab@subwords"),
        ("data/ids/subwords/val.src.npy", "numericalize@subwords"),
        ("models/gru/model.safetensors", "train@gru"),
        ("models/transformer", "train@transformer"),
        ("elsewhere/gru/config.json", None),
    ],
)
def test_a_missing_pipeline_file_names_the_stage_that_makes_it(path, stage):
    assert made_by(path) == stage
