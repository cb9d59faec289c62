"""The cheap dropout masks: Bernoulli(1 - p) in distribution, fresh on every call and rank,
and replayed exactly from a saved state."""

from __future__ import annotations

import io
import math

import pytest
import torch

from nmt import dropout


def kept(p: float, n: int = 1_000_000) -> torch.Tensor:
    return dropout.dropout(torch.ones(n), p, training=True) != 0


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_kept_fraction_is_binomial_and_the_expectation_is_kept(p):
    dropout.seed(1)
    n = 1_000_000
    out = dropout.dropout(torch.ones(n), p, training=True)
    keep = out != 0
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(int(keep.sum()) - n * (1 - p)) < 5 * sigma
    threshold = round(p * dropout.LEVELS)
    assert torch.all(out[keep] == dropout.LEVELS / (dropout.LEVELS - threshold))
    # neighbours are independent: a kept element is followed by a kept one at rate 1 - p
    pairs = int((keep[:-1] & keep[1:]).sum())
    assert abs(pairs - (n - 1) * (1 - p) ** 2) < 5 * math.sqrt(n * (1 - p) ** 2)


def test_masks_differ_per_call_and_per_rank_and_repeat_per_seed():
    dropout.seed(7, rank=0)
    first, second = kept(0.3), kept(0.3)
    dropout.seed(7, rank=1)
    other_rank = kept(0.3)
    dropout.seed(7, rank=0)
    again = kept(0.3)
    assert not torch.equal(first, second)
    assert not torch.equal(first, other_rank)
    assert torch.equal(first, again)


def test_a_saved_state_replays_the_masks():
    dropout.seed(3)
    kept(0.3, 1001)  # an odd size leaves part of a 64-bit draw unused
    saved = io.BytesIO()
    torch.save({"mask_rng": [dropout.get_state()]}, saved)
    expected = kept(0.3)
    dropout.seed(99)
    saved.seek(0)
    dropout.set_state(torch.load(saved, weights_only=True)["mask_rng"][0])
    assert torch.equal(kept(0.3), expected)


def test_outside_training_or_at_zero_it_is_the_identity_and_gradients_follow_the_mask():
    x = torch.randn(50, 7, requires_grad=True)
    assert dropout.dropout(x, 0.3, training=False) is x
    assert dropout.dropout(x, 0.0, training=True) is x
    out = dropout.Dropout(0.3).train()(x)
    out.sum().backward()
    scale = dropout.LEVELS / (dropout.LEVELS - round(0.3 * dropout.LEVELS))
    assert torch.equal(x.grad, (out != 0) * torch.tensor(scale, dtype=torch.float32))


def test_torch_masks_draw_from_torch_as_the_seed_did():
    dropout.seed(5)
    before = dropout.get_state()
    torch.manual_seed(0)
    with dropout.torch_masks():
        ours = dropout.dropout(torch.ones(1000), 0.3, training=True)
    torch.manual_seed(0)
    assert torch.equal(ours, torch.nn.functional.dropout(torch.ones(1000), 0.3))
    assert dropout.get_state() == before
