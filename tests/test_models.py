import pytest
import torch
import torch.nn.functional as F

from nmt import PAD_ID
from nmt.config import ModelParams
from nmt.models import build_model

TINY = {"emb_dim": 8, "hid_dim": 12, "dropout": 0.0}


def tiny(arch: str, **over) -> torch.nn.Module:
    extra = {"n_layers": 2} if arch == "lstm" else {"attn_dim": 10} if arch == "attention" else {}
    torch.manual_seed(0)
    return build_model(ModelParams(arch=arch, **{**TINY, **extra, **over}), 20, 15)


def batch(lengths=(6, 4, 2)):
    src = torch.full((max(lengths), len(lengths)), PAD_ID)
    for column, n in enumerate(lengths):
        src[:n, column] = torch.arange(n) + 4
    trg = torch.randint(4, 15, (7, len(lengths)))
    trg[5:, 1] = PAD_ID
    return src, torch.tensor(lengths), trg


@pytest.mark.parametrize(
    ("arch", "count"), [("lstm", 13_898_501), ("gru", 14_219_781), ("attention", 20_518_405)]
)
def test_parameter_counts_of_the_seed_models(default_params, arch, count):
    model = build_model(default_params.model_params(arch), 7853, 5893)
    assert model.n_parameters() == count


@pytest.mark.parametrize("arch", ["lstm", "gru", "attention"])
@pytest.mark.parametrize("forcing", [True, False])
def test_forward_shapes(arch, forcing):
    model = tiny(arch)
    src, src_len, trg = batch()
    features = model.decode_features(src, src_len, trg, torch.full((7,), forcing))
    width = {"lstm": 12, "gru": 8 + 2 * 12, "attention": 12 + 2 * 12 + 8}[arch]
    assert features.shape == (6, 3, width)
    assert model.project(features).shape == (6, 3, 15)
    loss = model.loss(src, src_len, trg, torch.full((7,), forcing))
    assert loss.shape == () and torch.isfinite(loss)


@pytest.mark.parametrize("arch", ["lstm", "gru", "attention"])
def test_loss_ignores_padding_and_equals_reference(arch):
    model = tiny(arch)
    src, src_len, trg = batch()
    forcing = torch.tensor([True, False, True, True, False, True, True])
    logits = model.project(model.decode_features(src, src_len, trg, forcing))
    reference = F.cross_entropy(logits.reshape(-1, 15), trg[1:].reshape(-1), ignore_index=PAD_ID)
    assert model.loss(src, src_len, trg, forcing).item() == pytest.approx(
        reference.item(), rel=1e-6
    )


def test_teacher_forcing_changes_inputs_only_where_drawn():
    model = tiny("gru")
    src, src_len, trg = batch()
    forced = model.decode_features(src, src_len, trg, torch.ones(7, dtype=torch.bool))
    free = model.decode_features(src, src_len, trg, torch.zeros(7, dtype=torch.bool))
    assert torch.equal(forced[0], free[0])  # step 1 always reads <sos>
    assert not torch.allclose(forced[1:], free[1:])


def per_sentence(state) -> torch.Tensor:
    """The decoder's initial state with the batch first, whatever the architecture keeps."""
    hidden = state[0] if isinstance(state, tuple) else state
    return hidden if hidden.dim() == 2 else hidden.transpose(0, 1)


@pytest.mark.parametrize("arch", ["lstm", "gru", "attention"])
def test_encoder_skips_padding(arch):
    """A sentence's encoding is the same alone and padded beside a longer sentence."""
    model = tiny(arch)
    src, src_len, _ = batch((6, 3))
    alone, _ = model.encode(src[:3, 1:], src_len[1:])
    padded, _ = model.encode(src, src_len)
    assert torch.allclose(per_sentence(padded)[1], per_sentence(alone)[0], atol=1e-6)


def test_attention_weights_sum_to_one_and_skip_padding():
    model = tiny("attention")
    src, src_len, _ = batch()
    state, memory = model.encode(src, src_len)
    weights = model.attend(state, memory)
    assert weights.shape == (6, 3)
    assert torch.allclose(weights.sum(0), torch.ones(3))
    assert (weights[src == PAD_ID] == 0).all()
    assert (weights[src != PAD_ID] > 0).all()
    unmasked = tiny("attention", masked=False)
    state, memory = unmasked.encode(src, src_len)
    assert (unmasked.attend(state, memory)[src == PAD_ID] > 0).all()


def test_split_attention_projection_equals_the_concatenated_linear():
    """W [s; h_j] computed as W_s s + W_h h_j matches the seed's Linear over the concatenation."""
    model = tiny("attention")
    src, src_len, _ = batch()
    state, memory = model.encode(src, src_len)
    repeated = state.unsqueeze(0).expand(src.shape[0], -1, -1)
    energy = torch.tanh(model.attention(torch.cat([repeated, memory.outputs], 2)))
    scores = model.energy(energy).squeeze(2).masked_fill(src == PAD_ID, -1e10)
    assert torch.allclose(model.attend(state, memory), torch.softmax(scores, 0), atol=1e-6)


def test_initialisation_follows_the_papers():
    lstm = tiny("lstm")
    assert all(p.abs().max() <= 0.08 for p in lstm.parameters())
    attention = build_model(
        ModelParams(arch="attention", emb_dim=64, hid_dim=64, dropout=0.5), 50, 50
    )
    biases = [p for n, p in attention.named_parameters() if "bias" in n]
    weights = [p for n, p in attention.named_parameters() if "bias" not in n]
    assert all((b == 0).all() for b in biases)
    assert torch.cat([w.flatten() for w in weights]).std().item() == pytest.approx(0.01, rel=0.05)
