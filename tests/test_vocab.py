import unicodedata

import numpy as np
import pandas as pd
import pytest

from nmt import EOS_ID, PAD_ID, SOS_ID, SPECIALS, UNK_ID, MissingInput, NMTError
from nmt.batching import ParallelData
from nmt.config import SentencePieceParams, WordVocabParams
from nmt.io import write_parquet_chunks
from nmt.resegment import SampledSegmentations
from nmt.tokenization import TokenTable, iter_pairs, tokenized_chunks
from nmt.vocab import (
    PieceTokenizer,
    Vocabulary,
    WordTokenizer,
    build_pieces,
    build_words,
    count_vocab,
    load_vocab_pair,
    load_vocabulary,
)

GERMAN = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee!", "Ein Kind lacht."]
ENGLISH = ["A man rides a bike.", "Two dogs play in the snow!", "A child laughs."]


def test_specials_first_then_frequency_then_alphabet():
    sentences = [["b", "a", "c", "c"], ["a", "b", "d", "c"], ["e"]]
    vocab = count_vocab(sentences, min_freq=2)
    assert SPECIALS == ("<unk>", "<pad>", "<sos>", "<eos>")
    assert (UNK_ID, PAD_ID, SOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert vocab["token"].tolist() == [*SPECIALS, "c", "a", "b"]  # c:3, then a:2 and b:2 by name
    assert vocab["freq"].tolist() == [0, 0, 0, 0, 3, 2, 2]


def test_min_freq_one_keeps_everything():
    vocab = count_vocab([["x", "y"], ["y"]], min_freq=1)
    assert vocab["token"].tolist()[4:] == ["y", "x"]


def test_ids_frame_and_map_unknown():
    vocab = Vocabulary([*SPECIALS, "a", "b"], WordTokenizer("en", lowercase=True))
    ids = vocab.ids([["a", "zzz", "b"]])
    assert ids[0].dtype == np.int32
    assert ids[0].tolist() == [SOS_ID, 4, UNK_ID, 5, EOS_ID]
    assert vocab.decode(ids[0]) == "a <unk> b"  # the frame is not text


def word_vocab(folder, lowercase=True):
    tokens = pd.DataFrame(
        {
            lang: WordTokenizer(lang, False).split(lines)
            for lang, lines in (("de", GERMAN), ("en", ENGLISH))
        }
    )
    spec = WordVocabParams(kind="words", lowercase=lowercase, min_freq=1)
    return build_words(folder, spec, tokens, ("de", "en"))


def test_word_vocabulary_saved_and_loaded_with_its_tokenizer(tmp_path):
    sizes = word_vocab(tmp_path)
    de, en = load_vocab_pair(tmp_path, "de", "en")
    assert (len(de), len(en)) == (sizes["de"], sizes["en"])
    assert "fahrrad" in de.tokens and "Fahrrad" not in de.tokens
    ids = de.encode(["Ein Kind fährt."])[0]
    assert de.words(ids) == ["<sos>", "ein", "kind", "fährt", ".", "<eos>"]
    assert en.decode(en.encode(["A dog laughs!"])[0]) == "a <unk> laughs!"
    assert de.hash != en.hash
    word_vocab(tmp_path / "cased", lowercase=False)
    cased = load_vocabulary(tmp_path / "cased", "en")
    assert cased.decode(cased.encode([ENGLISH[0]])[0]) == ENGLISH[0]
    with pytest.raises(MissingInput, match=r"tokenizer.json not found$"):
        load_vocabulary(tmp_path / "missing", "de")


def test_classic_vocabulary_sizes_on_real_multi30k(raw_dir, tmp_path):
    """Counted as the stage counts: streamed from the tokenize output, a row group at a time."""
    tokens = tmp_path / "train.parquet"
    assert write_parquet_chunks(tokens, tokenized_chunks(raw_dir, "train", "de", "en")) == 29000
    spec = WordVocabParams(kind="words", lowercase=True, min_freq=2)
    sizes = build_words(tmp_path / "vocab", spec, TokenTable(tokens), ("de", "en"))
    assert sizes == {"de": 7853, "en": 5893}


@pytest.fixture(scope="module")
def pieces(raw_dir, tmp_path_factory):
    """A joint 1,000-piece BPE vocabulary trained on the real Multi30k training split."""
    folder = tmp_path_factory.mktemp("pieces")
    spec = SentencePieceParams(kind="sentencepiece", vocab_size=1000)
    files = {lang: raw_dir / f"train.{lang}" for lang in ("de", "en")}
    sizes = build_pieces(folder, spec, files, seed=1)
    return folder, spec, files, sizes


def round_trips(folder, raw_dir, lang):
    """Each validation line and what encoding then decoding it gives back."""
    vocab = load_vocabulary(folder, lang)
    lines = [line.strip() for line in (raw_dir / f"val.{lang}").read_text("utf-8").splitlines()]
    ids = vocab.encode(lines)
    assert sum(int((i == UNK_ID).sum()) for i in ids) == 0
    return lines, [vocab.decode(i) for i in ids]


def test_sentencepiece_round_trip_gives_the_normalized_text_back(pieces, raw_dir):
    for lang in ("de", "en"):
        lines, decoded = round_trips(pieces[0], raw_dir, lang)
        assert decoded == [" ".join(unicodedata.normalize("NFKC", line).split()) for line in lines]
        if lang == "de":
            assert decoded != lines  # val.de has a no-break space and double spaces


def test_sentencepiece_without_normalization_round_trips_exactly(pieces, raw_dir, tmp_path):
    _, spec, files, _ = pieces
    build_pieces(tmp_path, spec.model_copy(update={"normalization": "identity"}), files, 1)
    for lang in ("de", "en"):
        lines, decoded = round_trips(tmp_path, raw_dir, lang)
        assert decoded == lines


def test_a_word_never_seen_in_training_is_spelt_by_pieces(pieces):
    folder, *_ = pieces
    de, en = load_vocab_pair(folder, "de", "en")
    assert de.tokens == en.tokens and len(de) == 1000  # joint
    line = "Zwei Mädchen essen Spätzle in Tübingen."
    assert "Spätzle" not in pieces[2]["de"].read_text(encoding="utf-8")
    ids = de.encode([line])[0]
    assert UNK_ID not in ids.tolist()
    assert de.decode(ids) == line
    words = WordTokenizer("de", True).split([line])[0]
    assert "spätzle" in words  # the word vocabulary of the same text has no such entry


def test_with_byte_fallback_a_subword_model_spells_any_text(pieces, tmp_path):
    folder, spec, files, _ = pieces
    line = "Ein Hund 🐕 bellt 狗"  # characters no training line has
    de = load_vocabulary(folder, "de")
    assert UNK_ID in de.encode([line])[0].tolist()  # without it: <unk>, written as ⁇
    build_pieces(tmp_path, spec.model_copy(update={"byte_fallback": True}), files, seed=1)
    de = load_vocabulary(tmp_path, "de")
    assert len(de) == 1000 and "<0xF0>" in de.index  # the 256 bytes are pieces of the 1,000
    ids = de.encode([line])[0]
    assert UNK_ID not in ids.tolist() and de.decode(ids) == line
    assert (tmp_path / "de.model").read_bytes() != (folder / "de.model").read_bytes()


def test_sentencepiece_training_is_deterministic_and_per_language_when_asked(pieces, tmp_path):
    folder, spec, files, sizes = pieces
    assert sizes == {"de": 1000, "en": 1000}
    again = tmp_path / "again"
    build_pieces(again, spec, files, seed=1)
    assert (again / "de.model").read_bytes() == (folder / "de.model").read_bytes()
    apart = spec.model_copy(update={"joint": False, "vocab_size": 500, "model_type": "unigram"})
    build_pieces(tmp_path / "apart", apart, files, seed=1)
    de, en = load_vocab_pair(tmp_path / "apart", "de", "en")
    assert len(de) == len(en) == 500 and de.tokens != en.tokens
    assert "▁Hund" in de.tokens or "▁Hunde" in de.tokens


def test_too_many_pieces_for_the_corpus_is_one_clear_line(tmp_path):
    text = tmp_path / "train.en"
    text.write_text("a b c\nabc cab\n", encoding="utf-8")
    spec = SentencePieceParams(kind="sentencepiece", vocab_size=500)
    with pytest.raises(NMTError) as err:
        build_pieces(tmp_path / "v", spec, {"en": text}, seed=1)
    message = str(err.value)
    assert message.startswith("params.yaml: vocab_size 500 is more pieces than the en training")
    assert "at most" in message and "\n" not in message


def test_sampled_segmentations_spell_the_same_text_and_follow_the_seed(pieces, raw_dir):
    vocab = load_vocabulary(pieces[0], "de")
    lines = (raw_dir / "val.de").read_text("utf-8").splitlines()[:200]
    best = vocab.encode(lines)
    first, again, other = (vocab.sample(lines, 0.1, seed) for seed in (7, 7, 8))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert sum(map(len, first)) > sum(map(len, best))  # merges dropped: more, shorter pieces
    assert [vocab.decode(ids) for ids in first] == [vocab.decode(ids) for ids in best]


def test_only_a_sentencepiece_vocabulary_samples(tmp_path):
    word_vocab(tmp_path)
    vocab = load_vocabulary(tmp_path, "de")
    with pytest.raises(NMTError, match="only a SentencePiece vocabulary samples"):
        vocab.sample(["ein Hund"], 0.1, 1)


def test_each_epoch_reads_a_new_sample_of_the_numericalized_pairs(pieces, raw_dir):
    vocabs = load_vocab_pair(pieces[0], "de", "en")
    pairs = list(iter_pairs(raw_dir, "val", "de", "en"))
    best = [
        tuple(len(v.encode([line])[0]) - 2 for v, line in zip(vocabs, pair, strict=True))
        for pair in pairs
    ]
    kept = [i for i, lengths in enumerate(best) if max(lengths) <= 20]
    sampled = SampledSegmentations(pairs, vocabs, alpha=0.1, seed=3, max_len=20)
    assert len(sampled) == len(kept) < len(pairs)  # the long pairs numericalize drops
    first, again, second = sampled.epoch(0), sampled.epoch(0), sampled.epoch(1)
    assert np.array_equal(first.lengths, again.lengths)
    assert not np.array_equal(first.lengths, second.lengths)
    assert first.lengths.max() - 2 <= 20  # a sample over max_len keeps the best segmentation
    assert (first.lengths - 2).sum() > np.array([best[i] for i in kept]).sum()
    texts = [(vocabs[0].decode(first.src[n]), vocabs[1].decode(first.trg[n])) for n in range(20)]
    assert texts == [
        tuple(v.decode(v.encode([line])[0]) for v, line in zip(vocabs, pairs[i], strict=True))
        for i in kept[:20]
    ]


def test_sampling_refuses_text_that_numericalize_did_not_make(pieces, raw_dir):
    vocabs = load_vocab_pair(pieces[0], "de", "en")
    other = ParallelData([np.array([2, 5, 3])], [np.array([2, 6, 3])])
    with pytest.raises(NMTError, match="rerun the data stages") as err:
        SampledSegmentations.of_split(raw_dir, "val", ("de", "en"), vocabs, 0.1, 1, 100, other)
    assert "\n" not in str(err.value)


def test_a_damaged_sentencepiece_model_is_one_line_naming_it(tmp_path):
    model = tmp_path / "de.model"
    model.write_bytes(bytes(range(100)))
    with pytest.raises(NMTError) as err:
        PieceTokenizer(model, lowercase=False)
    assert str(err.value).startswith(f"{model} is not a SentencePiece model (damaged")
    assert "\n" not in str(err.value)
