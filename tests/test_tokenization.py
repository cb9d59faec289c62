import pytest

from nmt import NMTError
from nmt.tokenization import read_parallel, tokenize, tokenize_split


def test_tokenize_lowercases_after_splitting():
    assert tokenize(["Zwei Männer stehen am Herd."], "de") == [
        ["zwei", "männer", "stehen", "am", "herd", "."]
    ]
    assert tokenize(["A man's dog, running."], "en") == [
        ["a", "man", "'s", "dog", ",", "running", "."]
    ]


def write_pair(path, de: bytes, en: bytes):
    (path / "train.de").write_bytes(de)
    (path / "train.en").write_bytes(en)


def test_tokenize_split_strips_lines(tmp_path):
    write_pair(tmp_path, "Ein Hund läuft. \nZwei Katzen.\n".encode(), b"A dog runs.\nTwo cats.\n")
    frame = tokenize_split(tmp_path, "train", "de", "en")
    assert frame["de"].tolist() == [["ein", "hund", "läuft", "."], ["zwei", "katzen", "."]]
    assert frame["en"].tolist() == [["a", "dog", "runs", "."], ["two", "cats", "."]]


def test_mismatched_line_counts(tmp_path):
    write_pair(tmp_path, b"Eins.\nZwei.\n", b"One.\n")
    with pytest.raises(NMTError, match="split 'train' is misaligned: 2 de lines but 1 en lines"):
        read_parallel(tmp_path, "train", "de", "en")


def test_blank_line_is_named(tmp_path):
    write_pair(tmp_path, b"Eins.\n\nDrei.\n", b"One.\nTwo.\nThree.\n")
    with pytest.raises(NMTError, match=r"train.de line 2 is blank"):
        read_parallel(tmp_path, "train", "de", "en")


def test_non_utf8_is_named(tmp_path):
    write_pair(tmp_path, b"Eins.\nZw\xffei.\n", b"One.\nTwo.\n")
    with pytest.raises(NMTError, match=r"train.de line 2 is not valid UTF-8"):
        read_parallel(tmp_path, "train", "de", "en")


def test_empty_and_missing_files(tmp_path):
    write_pair(tmp_path, b"", b"")
    with pytest.raises(NMTError, match=r"train\.de is empty"):
        read_parallel(tmp_path, "train", "de", "en")
    with pytest.raises(NMTError, match=r"val.de not found: run `dvc repro download` first"):
        read_parallel(tmp_path, "val", "de", "en")
