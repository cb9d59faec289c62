import numpy as np
import pandas as pd
import pytest

from nmt import EOS_ID, PAD_ID, SOS_ID, SPECIALS, UNK_ID, MissingInput
from nmt.tokenization import tokenized_chunks
from nmt.vocab import build_vocab, load_vocab, numericalize, save_vocab, vocab_hash


def test_specials_first_then_frequency_then_alphabet():
    sentences = [["b", "a", "c", "c"], ["a", "b", "d", "c"], ["e"]]
    vocab = build_vocab(sentences, min_freq=2)
    assert SPECIALS == ("<unk>", "<pad>", "<sos>", "<eos>")
    assert (UNK_ID, PAD_ID, SOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert vocab["token"].tolist() == [*SPECIALS, "c", "a", "b"]  # c:3, then a:2 and b:2 by name
    assert vocab["freq"].tolist() == [0, 0, 0, 0, 3, 2, 2]


def test_min_freq_one_keeps_everything():
    vocab = build_vocab([["x", "y"], ["y"]], min_freq=1)
    assert vocab["token"].tolist()[4:] == ["y", "x"]


def test_numericalize_frames_and_maps_unknown():
    tokens = [*SPECIALS, "a", "b"]
    ids = numericalize([["a", "zzz", "b"]], tokens)
    assert ids[0].dtype == np.int32
    assert ids[0].tolist() == [SOS_ID, 4, UNK_ID, 5, EOS_ID]


def test_save_load_roundtrip_and_hash(tmp_path):
    vocab = build_vocab([["a", "a"]], min_freq=1)
    save_vocab(tmp_path / "v.parquet", vocab)
    tokens = load_vocab(tmp_path / "v.parquet")
    assert tokens == [*SPECIALS, "a"]
    assert vocab_hash(tokens) != vocab_hash([*SPECIALS, "b"])
    with pytest.raises(MissingInput, match=r"missing.parquet not found$"):
        load_vocab(tmp_path / "missing.parquet")


def test_classic_vocabulary_sizes_on_real_multi30k(raw_dir):
    train = pd.concat(tokenized_chunks(raw_dir, "train", "de", "en"))
    assert len(train) == 29000
    assert len(build_vocab(train["de"], min_freq=2)) == 7853
    assert len(build_vocab(train["en"], min_freq=2)) == 5893
