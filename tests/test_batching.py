import numpy as np
import pytest
import torch

from nmt import EOS_ID, PAD_ID, SOS_ID, UNK_ID, MissingInput, NMTError
from nmt.batching import ParallelData
from nmt.ids import SplitCounts, TokenFile, drop_long_pairs, numericalize, write_ids
from tests.conftest import random_pairs


def test_batch_shapes_and_padding():
    data = random_pairs(50, vocab=30)
    batch = data.collate(np.arange(10))
    assert batch.src.shape == (int(data.lengths[:10, 0].max()), 10)
    assert batch.trg.shape == (int(data.lengths[:10, 1].max()), 10)
    assert batch.src.dtype == batch.trg.dtype == batch.src_len.dtype
    for column, i in enumerate(batch.index):
        n = len(data.src[i])
        assert batch.src[:n, column].tolist() == data.src[i].tolist()
        assert (batch.src[n:, column] == PAD_ID).all()
        assert batch.src_len[column] == n
    assert (batch.src_len[:-1] >= batch.src_len[1:]).all()  # longest first, as packing likes
    assert batch.n_trg_tokens == int(data.lengths[:10, 1].sum()) - 10


def test_every_example_once_per_epoch_and_bucketed():
    data = random_pairs(1000, vocab=30, max_len=40)
    groups = data.batch_indices(batch_size=32, pool_factor=4, seed=1, epoch=0)
    assert sorted(np.concatenate(groups).tolist()) == list(range(1000))
    assert all(len(g) <= 32 for g in groups)
    unsorted = [np.arange(i, min(i + 32, 1000)) for i in range(0, 1000, 32)]
    assert data.padding_ratio(groups) < data.padding_ratio(unsorted) / 2


def test_shuffling_is_seeded_and_changes_per_epoch():
    data = random_pairs(500, vocab=30)
    first = data.batch_indices(16, 4, seed=7, epoch=0)
    again = data.batch_indices(16, 4, seed=7, epoch=0)
    other = data.batch_indices(16, 4, seed=7, epoch=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=False))


def test_evaluation_order_is_fixed_and_sorted():
    data = random_pairs(100, vocab=30)
    order = np.concatenate(data.batch_indices(10))
    assert (np.diff(data.lengths[order, 0]) >= 0).all()


def test_reverse_src_keeps_sos_and_eos():
    data = ParallelData(
        [np.array([SOS_ID, 5, 6, 7, EOS_ID])], [np.array([SOS_ID, 9, EOS_ID])], reverse_src=True
    )
    assert data.src[0].tolist() == [SOS_ID, 7, 6, 5, EOS_ID]
    assert data.trg[0].tolist() == [SOS_ID, 9, EOS_ID]


def test_padding_ratio_counts_pads():
    data = ParallelData(
        [np.array([2, 4, 3]), np.array([2, 3])], [np.array([2, 3]), np.array([2, 3])]
    )
    # src 3x2 holds 5 real ids, trg 2x2 holds 4: 1 pad in 10 positions
    assert data.padding_ratio([np.array([0, 1])]) == pytest.approx(0.1)


def test_mismatched_sides_and_missing_file(tmp_path):
    with pytest.raises(NMTError, match="2 source but 1 target sentences"):
        ParallelData([np.array([2, 3])] * 2, [np.array([2, 3])])
    with pytest.raises(MissingInput, match=r"train.src.npy not found$"):
        ParallelData.load(tmp_path, "train")


def test_long_pairs_are_dropped_and_counted():
    def sentence(words: int) -> np.ndarray:
        return np.array([2, *range(4, 4 + words), 3])

    src = [sentence(3), sentence(6), sentence(2)]
    trg = [sentence(5), sentence(1), sentence(7)]
    kept_src, kept_trg, dropped = drop_long_pairs(src, trg, max_len=5)
    assert dropped == 2
    assert [len(s) for s in kept_src] == [5] and [len(t) for t in kept_trg] == [7]
    assert drop_long_pairs(src, trg, max_len=7)[2] == 0


def test_token_batches_fit_the_budget_and_cover_every_example_once():
    data = random_pairs(500, vocab=30, seed=3, max_len=20)
    groups = data.batch_indices(32, pool_factor=4, seed=1, epoch=0, max_tokens=200)
    assert sorted(np.concatenate(groups).tolist()) == list(range(500))
    for group in groups:
        assert len(group) * data.lengths[group].max() <= 200 or len(group) == 1
    sizes = [len(g) for g in groups]
    assert max(sizes) > 2 * min(sizes)  # short sentences come in bigger batches
    alone = data.batch_indices(32, pool_factor=4, seed=1, epoch=0, max_tokens=1)
    assert all(len(g) == 1 for g in alone)


def test_ids_written_in_chunks_read_back_from_disk(tmp_path):
    data = random_pairs(50, vocab=30, seed=4)
    src, trg = list(data.src), list(data.trg)
    chunks = [(src[:7], trg[:7]), ([], []), (src[7:], trg[7:])]
    lengths = write_ids(tmp_path, "train", iter(chunks))
    assert np.array_equal(lengths, data.lengths)
    for reverse in (False, True):
        loaded = ParallelData.load(tmp_path, "train", reverse_src=reverse)
        expected = ParallelData(src, trg, reverse_src=reverse)
        assert isinstance(loaded.src.tokens, TokenFile) and isinstance(loaded.trg.tokens, TokenFile)
        assert np.array_equal(loaded.lengths, expected.lengths)
        for i in range(len(expected)):
            assert loaded.src[i].tolist() == expected.src[i].tolist()
            assert loaded.trg[i].tolist() == expected.trg[i].tolist()
        index = np.arange(20, 40)
        batch, same = loaded.collate(index), expected.collate(index)
        assert torch.equal(batch.src, same.src) and torch.equal(batch.trg, same.trg)
    (tmp_path / "train.trg.npy").write_bytes(b"not numpy")
    with pytest.raises(MissingInput, match=r"train.trg.npy is not a token array written by"):
        ParallelData.load(tmp_path, "train")
    np.save(tmp_path / "train.trg.npy", np.zeros(3))
    with pytest.raises(
        MissingInput, match=r"train.trg.npy holds float64 \(3,\), not the token ids"
    ):
        ParallelData.load(tmp_path, "train")


class Letters:
    """A stand-in vocabulary: one id per letter, <unk> for 'z'."""

    def encode(self, lines: list[str]) -> list[np.ndarray]:
        ids = [[UNK_ID if c == "z" else 4 + ord(c) - ord("a") for c in line] for line in lines]
        return [np.array([SOS_ID, *s, EOS_ID]) for s in ids]


def test_numericalize_streams_chunks_and_tallies_them():
    pairs = [("ab", "c"), ("abcdef", "d"), ("z", "az"), ("b", "bcdefgh"), ("e", "f")]
    counts = SplitCounts()
    chunks = list(numericalize(iter(pairs), (Letters(), Letters()), counts, max_len=4, chunk=2))
    assert [len(src) for src, _ in chunks] == [1, 1, 1]  # 2 + 2 + 1 pairs, 2 of them too long
    assert [[s.tolist() for s in src] for src, _ in chunks] == [
        [[2, 4, 5, 3]],
        [[2, 0, 3]],
        [[2, 8, 3]],
    ]
    assert counts == SplitCounts(
        pairs=3, dropped=2, src_tokens=10, trg_tokens=10, src_unknown=1, trg_unknown=1
    )
    whole = SplitCounts()
    assert sum(len(s) for s, _ in numericalize(iter(pairs), (Letters(),) * 2, whole)) == 5
    assert whole.dropped == 0
