import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bench.seed_loop import reference_loss
from nmt import PAD_ID, NMTError
from nmt.config import available_archs
from nmt.loss import ConsistencyCrossEntropy, LinearCrossEntropy, consistency_loss, sequence_loss
from nmt.models import architecture, build_model, model_params
from nmt.teacher_forcing import teacher_forced_runs

TINY = {"emb_dim": 8, "hid_dim": 12, "dropout": 0.0}
EXTRA = {
    "lstm": {"n_layers": 2},
    "gru": {},
    "attention": {"attn_dim": 10},
    "transformer": {"emb_dim": 12, "n_layers": 2, "heads": 3, "ff_dim": 16},
}


def tiny(arch: str, **over) -> torch.nn.Module:
    extra = EXTRA.get(arch, {})
    torch.manual_seed(0)
    return build_model(arch, architecture(arch).Params(**{**TINY, **extra, **over}), 20, 15)


def batch(lengths=(6, 4, 2)):
    src = torch.full((max(lengths), len(lengths)), PAD_ID)
    for column, n in enumerate(lengths):
        src[:n, column] = torch.arange(n) + 4
    trg = torch.randint(4, 15, (7, len(lengths)))
    trg[5:, 1] = PAD_ID
    return src, torch.tensor(lengths), trg


# The Transformer of the classic Multi30k tutorials, on their word vocabularies (7,853 / 5,893).
CLASSIC_TRANSFORMER = {
    "emb_dim": 256,
    "hid_dim": 256,
    "dropout": 0.1,
    "n_layers": 3,
    "heads": 8,
    "ff_dim": 512,
    "max_positions": 100,
    "tie_embeddings": False,
    "share_embeddings": False,
}


@pytest.mark.parametrize(
    ("arch", "count"),
    [("lstm", 13_898_501), ("gru", 14_219_781), ("attention", 20_518_405)],
)
def test_parameter_counts_of_the_seed_models(default_params, arch, count):
    model = build_model(arch, model_params(default_params, arch), 7853, 5893)
    assert model.n_parameters() == count


def classic_transformer(default_params, **over):
    params = model_params(default_params, "transformer")
    return params.model_copy(update={**CLASSIC_TRANSFORMER, **over})


def test_parameter_count_of_the_default_transformer(default_params):
    """The small recipe: width 128, 4 + 4 layers, one embedding matrix for the joint
    8,000-piece vocabulary, shared by both languages and the output layer."""
    params = model_params(default_params, "transformer")
    assert build_model("transformer", params, 8000, 8000).n_parameters() == 2_389_824


@pytest.mark.parametrize("arch", ["lstm", "gru", "attention"])
def test_decode_shapes(arch):
    model = tiny(arch)
    src, src_len, trg = batch()
    state, memory = model.encode(src, src_len)
    features, _, weights = model.decode(trg[:4], state, memory)
    width = {"lstm": 12, "gru": 8 + 12, "attention": 12 + 2 * 12 + 8}[arch]
    assert features.shape == (4, 3, width)
    columns = torch.tensor([0, 2, 1])
    assert model.project(features[0], memory, columns).shape == (3, 15)
    assert (weights is None) == (arch != "attention")
    if weights is not None:
        assert weights.shape == (4, 6, 3)


@pytest.mark.parametrize("arch", available_archs())
def test_decoding_a_run_equals_decoding_step_by_step(arch):
    model = tiny(arch)
    src, src_len, trg = batch()
    state, memory = model.encode(src, src_len)
    whole, whole_state, _ = model.decode(trg[:5], state, memory)
    steps = []
    for token in trg[:5]:
        features, state, _ = model.decode(token.unsqueeze(0), state, memory)
        steps.append(features[0])
    assert torch.allclose(whole, torch.stack(steps), atol=1e-6)
    for a, b in zip(
        torch.utils._pytree.tree_leaves(whole_state),
        torch.utils._pytree.tree_leaves(state),
        strict=True,
    ):
        assert torch.allclose(a, b, atol=1e-6)


def tensors(value: object) -> list[torch.Tensor]:
    """The tensors a model's memory holds, however it nests them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value):
        value = [getattr(value, field.name) for field in dataclasses.fields(value)]
    if isinstance(value, list | tuple):
        return [tensor for item in value for tensor in tensors(item)]
    return []


@pytest.mark.parametrize("arch", available_archs())
def test_select_memory_takes_the_sentences_of_every_tensor_in_the_memory(arch):
    """The memory holds only what differs by sentence: selecting sentences shrinks every
    tensor in it to them, and gives what encoding those sentences alone gives."""
    model = tiny(arch).eval()
    src, src_len, _ = batch((6, 4, 2, 5))
    rows = torch.tensor([3, 0, 0])  # reordered and repeated, as beam search does
    _, memory = model.encode(src, src_len)
    _, alone = model.encode(src[:, rows], src_len[rows])
    selected = tensors(model.select_memory(memory, rows))
    assert len(selected) == len(tensors(alone)) == len(tensors(memory))
    for whole, got, want in zip(tensors(memory), selected, tensors(alone), strict=True):
        assert got.shape != whole.shape and got.shape == want.shape
        assert torch.allclose(got.float(), want.float(), atol=1e-6)


def test_teacher_forced_runs_end_where_a_prediction_is_fed_back():
    forcing = torch.tensor([True, False, True, True, False, False, True])
    # steps 0..6; steps 1, 4 and 5 feed their prediction to the next step
    assert teacher_forced_runs(forcing, 7) == [(0, 2), (2, 5), (5, 6), (6, 7)]
    assert teacher_forced_runs(torch.ones(7, dtype=torch.bool), 7) == [(0, 7)]
    assert teacher_forced_runs(torch.zeros(7, dtype=torch.bool), 3) == [(0, 1), (1, 2), (2, 3)]


def test_linear_cross_entropy_reuses_known_logits_and_matches_autograd():
    torch.manual_seed(0)
    features = torch.randn(5, 4, requires_grad=True)
    weight = torch.randn(6, 4, requires_grad=True)
    targets = torch.tensor([0, 5, 2, 2, 1])
    for bias in (torch.randn(6, requires_grad=True), torch.randn(5, 6, requires_grad=True)):
        logits = features @ weight.t() + bias
        expected = F.cross_entropy(logits, targets, reduction="sum")
        want = torch.autograd.grad(expected, (features, weight, bias))
        # wrong values in the known rows would show: they are reused, not recomputed
        got = LinearCrossEntropy.apply(features, weight, bias, targets, logits[:2].detach())
        assert got.item() == pytest.approx(expected.item(), rel=1e-6)
        for g, w in zip(torch.autograd.grad(got, (features, weight, bias)), want, strict=True):
            assert torch.allclose(g, w, atol=1e-6)
        shifted = LinearCrossEntropy.apply(features, weight, bias, targets, logits[:2].detach() * 2)
        assert shifted.item() != pytest.approx(expected.item(), rel=1e-3)


def test_label_smoothing_matches_torch_cross_entropy():
    torch.manual_seed(0)
    features = torch.randn(5, 4, requires_grad=True)
    weight = torch.randn(6, 4, requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    targets = torch.tensor([0, 5, 2, 2, 1])
    logits = features @ weight.t() + bias
    plain = F.cross_entropy(logits, targets, reduction="sum")
    expected = F.cross_entropy(logits, targets, reduction="sum", label_smoothing=0.1)
    want = torch.autograd.grad(expected, (features, weight, bias))
    known = logits[:1].detach()
    got = LinearCrossEntropy.apply(features, weight, bias, targets, known, 0.1)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    assert got.item() != pytest.approx(plain.item(), rel=1e-3)
    for g, w in zip(torch.autograd.grad(got, (features, weight, bias)), want, strict=True):
        assert torch.allclose(g, w, atol=1e-6)


def sharpened(arch: str, **over) -> torch.nn.Module:
    """A tiny model with large weights: predictions differ from gold, so feedback matters."""
    model = tiny(arch, **over)
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.5)
    return model


FORCING = {
    "on": torch.ones(9, dtype=torch.bool),
    "off": torch.zeros(9, dtype=torch.bool),
    "mixed": torch.tensor([True, False, True, True, False, False, True, False, True]),
}


def ragged_batch():
    """Four sentences, targets of 9, 6, 9 and 3 steps: runs end inside the batch."""
    torch.manual_seed(1)
    src, src_len, _ = batch((6, 5, 4, 2))
    trg = torch.randint(4, 15, (9, 4))
    trg[6:, 1], trg[3:, 3] = PAD_ID, PAD_ID
    return src, src_len, trg


@pytest.mark.parametrize(
    ("arch", "over"),
    [("lstm", {}), ("gru", {}), ("attention", {}), ("attention", {"masked": False})],
)
@pytest.mark.parametrize("forcing", ["on", "off", "mixed"])
def test_loss_and_gradients_equal_the_seed_loop(arch, over, forcing):
    """Our step computes the seed's function: same loss and gradients as bench/seed_loop.py."""
    model = sharpened(arch, **over)
    src, src_len, trg = ragged_batch()
    teacher_force = FORCING[forcing]
    params = list(model.parameters())
    ours = sequence_loss(model, src, src_len, trg, teacher_force)
    ours_grads = torch.autograd.grad(ours, params)
    seed = reference_loss(model, src, src_len, trg, teacher_force)
    seed_grads = torch.autograd.grad(seed, params)
    assert ours.item() == pytest.approx(seed.item(), rel=1e-5)
    for (name, _), a, b in zip(model.named_parameters(), ours_grads, seed_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


def test_feeding_back_predictions_changes_the_loss():
    model = sharpened("gru")
    src, src_len, trg = batch()
    forced = sequence_loss(model, src, src_len, trg, torch.ones(7, dtype=torch.bool))
    free = sequence_loss(model, src, src_len, trg, torch.zeros(7, dtype=torch.bool))
    assert forced.item() != pytest.approx(free.item(), rel=1e-3)


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


def query(model, state: torch.Tensor) -> torch.Tensor:
    """W_s s: the decoder state's half of the attention's Linear over [s; h_j]."""
    return state @ model.attention.weight[:, : model.hid_dim].t()


def test_attention_weights_sum_to_one_and_skip_padding():
    model = tiny("attention")
    src, src_len, _ = batch()
    state, memory = model.encode(src, src_len)
    weights = model.attend(query(model, state), memory)
    assert weights.shape == (6, 3)
    assert torch.allclose(weights.sum(0), torch.ones(3))
    assert (weights[src == PAD_ID] == 0).all()
    assert (weights[src != PAD_ID] > 0).all()
    unmasked = tiny("attention", masked=False)
    state, memory = unmasked.encode(src, src_len)
    assert (unmasked.attend(query(unmasked, state), memory)[src == PAD_ID] > 0).all()


def test_split_attention_projection_equals_the_concatenated_linear():
    """W [s; h_j] computed as W_s s + W_h h_j matches the seed's Linear over the concatenation."""
    model = tiny("attention")
    src, src_len, _ = batch()
    state, memory = model.encode(src, src_len)
    repeated = state.unsqueeze(0).expand(src.shape[0], -1, -1)
    energy = torch.tanh(model.attention(torch.cat([repeated, memory.outputs], 2)))
    scores = model.energy(energy).squeeze(2).masked_fill(src == PAD_ID, -1e10)
    weights = model.attend(query(model, state), memory)
    assert torch.allclose(weights, torch.softmax(scores, 0), atol=1e-6)


def test_initialisation_follows_the_papers():
    lstm = tiny("lstm")
    assert all(p.abs().max() <= 0.08 for p in lstm.parameters())
    settings = {"emb_dim": 64, "hid_dim": 64, "dropout": 0.5}
    attention = build_model("attention", architecture("attention").Params(**settings), 50, 50)
    biases = [p for n, p in attention.named_parameters() if "bias" in n]
    weights = [p for n, p in attention.named_parameters() if "bias" not in n]
    assert all((b == 0).all() for b in biases)
    assert torch.cat([w.flatten() for w in weights]).std().item() == pytest.approx(0.01, rel=0.05)


@pytest.mark.parametrize("shared", [False, True])
def test_transformer_embeddings_start_at_unit_size_with_normal_init(shared):
    """N(0, d^-0.5) token vectors, scaled by sqrt(d): unit-size rows, as the position vectors;
    the other matrices keep Xavier's draw."""
    settings = {"emb_dim": 64, "hid_dim": 64, "dropout": 0.0, "heads": 4, "ff_dim": 32}
    options = {"share_embeddings": shared, "tie_embeddings": shared}
    params = architecture("transformer").Params(**settings, **options, embedding_init="normal")
    torch.manual_seed(0)
    model = build_model("transformer", params, 500, 500)
    for embedding in (model.src_embedding, model.trg_embedding):
        assert embedding.weight.std().item() == pytest.approx(64**-0.5, rel=0.03)
    torch.manual_seed(0)
    default = params.model_copy(update={"embedding_init": "xavier"})
    xavier = build_model("transformer", default, 500, 500)
    assert xavier.src_embedding.weight.std().item() == pytest.approx((2 / 564) ** 0.5, rel=0.03)
    others = dict(xavier.named_parameters())
    for name, param in model.named_parameters():
        assert torch.equal(param, others[name]) != ("embedding." in name), name


def transformer_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    src, src_len, _ = batch((6, 4, 2))
    trg = torch.randint(4, 15, (7, 3))
    trg[5:, 1] = PAD_ID
    return src, src_len, trg


def test_transformer_decoder_is_causal():
    """A position's features do not change when later target tokens change."""
    model = sharpened("transformer")
    src, src_len, trg = transformer_batch()
    state, memory = model.encode(src, src_len)
    before, _, _ = model.decode(trg, state, memory)
    changed = trg.clone()
    changed[4:] = torch.randint(4, 15, (3, 3))
    after, _, _ = model.decode(changed, state, memory)
    assert torch.allclose(before[:4], after[:4], atol=1e-6)
    assert not torch.allclose(before[4:], after[4:], atol=1e-3)


def test_transformer_ignores_padding():
    """More padding after the source or the target changes no real position's output."""
    model = sharpened("transformer")
    src, src_len, trg = transformer_batch()
    state, memory = model.encode(src, src_len)
    features, _, _ = model.decode(trg, state, memory)
    padded_src = torch.cat([src, torch.full((3, 3), PAD_ID)])
    padded_trg = torch.cat([trg, torch.full((2, 3), PAD_ID)])
    state, memory = model.encode(padded_src, src_len)
    padded, _, _ = model.decode(padded_trg, state, memory)
    real = trg != PAD_ID
    assert torch.allclose(features[real], padded[: len(trg)][real], atol=1e-5)
    loss = sequence_loss(model, src, src_len, trg, torch.ones(7, dtype=torch.bool))
    padded_loss = sequence_loss(
        model, padded_src, src_len, padded_trg, torch.ones(9, dtype=torch.bool)
    )
    assert loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)


def test_transformer_loss_is_cross_entropy_of_one_parallel_pass():
    """Teacher-forced, the loss is plain cross-entropy over the decoder's logits for trg[:-1]."""
    model = sharpened("transformer")
    src, src_len, trg = transformer_batch()
    state, memory = model.encode(src, src_len)
    features, _, _ = model.decode(trg[:-1], state, memory)
    logits = model.out(features)
    want = F.cross_entropy(logits.flatten(0, 1), trg[1:].flatten(), ignore_index=PAD_ID)
    got = sequence_loss(model, src, src_len, trg, torch.ones(7, dtype=torch.bool))
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    smoothed = sequence_loss(model, src, src_len, trg, torch.ones(7, dtype=torch.bool), 0.1)
    assert smoothed.item() == pytest.approx(
        F.cross_entropy(
            logits.flatten(0, 1), trg[1:].flatten(), ignore_index=PAD_ID, label_smoothing=0.1
        ).item(),
        rel=1e-5,
    )


def test_transformer_cross_attention_weights_in_eval_mode():
    model = sharpened("transformer").eval()
    src, src_len, trg = transformer_batch()
    state, memory = model.encode(src, src_len)
    features, _, weights = model.decode(trg[:4], state, memory)
    assert features.shape == (4, 3, 12)
    assert weights.shape == (4, 6, 3)
    assert torch.allclose(weights.sum(1), torch.ones(4, 3), atol=1e-6)
    assert (weights.permute(1, 2, 0)[src == PAD_ID] == 0).all()


@pytest.mark.parametrize(("n_layers", "heads"), [(1, 1), (2, 3), (3, 4)])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_attention_weights_are_every_layers_heads_of_decode_s(
    n_layers, heads, norm_first
):
    """The interface's weights come from the attention modules, head by head: the last
    layer's mean over heads is `decode`'s attention, every row sums to 1, padding gets
    none, and the shape is the stated `attention_layout`."""
    model = sharpened("transformer", n_layers=n_layers, heads=heads, norm_first=norm_first)
    model.eval()
    assert model.attention_layout == (n_layers, heads)
    assert model.max_target_positions == model.max_source_positions == 100
    for seed in range(3):
        torch.manual_seed(seed)
        length, steps = torch.randint(2, 9, (2,)).tolist()
        src = torch.randint(4, 20, (length, 1))
        inputs = torch.randint(4, 15, (steps, 1))
        weights = model.attention_weights(src, torch.tensor([length]), inputs)
        assert weights.shape == (n_layers, heads, steps, length)
        torch.testing.assert_close(weights.sum(-1), torch.ones(n_layers, heads, steps))
        state, memory = model.encode(src, torch.tensor([length]))
        _, _, last = model.decode(inputs, state, memory)
        torch.testing.assert_close(weights[-1].mean(0), last[:, :, 0])
        if heads > 1:
            assert not torch.allclose(weights[:, 0], weights[:, 1])


def test_one_attention_is_one_layer_of_one_head_and_an_rnn_without_has_none():
    """The interface's default: `decode`'s attention as a layer of one head; a model that
    states no attention has none to show."""
    model = sharpened("attention").eval()
    src, src_len, trg = batch((6, 6))
    src, src_len, inputs = src[:, :1], src_len[:1], trg[:5, :1]
    weights = model.attention_weights(src, src_len, inputs)
    state, memory = model.encode(src, src_len)
    _, _, want = model.decode(inputs, state, memory)
    assert model.attention_layout == (1, 1) and weights.shape == (1, 1, 5, 6)
    assert torch.equal(weights[0, 0], want[:, :, 0])
    for arch in ("lstm", "gru"):
        rnn = tiny(arch).eval()
        assert rnn.attention_layout is None and rnn.max_target_positions is None
        with pytest.raises(NMTError, match="has no attention to show"):
            rnn.attention_weights(src, src_len, inputs)


@pytest.mark.parametrize(
    ("over", "count"),
    [
        ({}, 9_038_341),
        ({"tie_embeddings": True}, 9_038_341 - 5893 * 256),
        ({"positions": "sinusoidal"}, 9_038_341 - 2 * 100 * 256),
        ({"norm_first": True}, 9_038_341 + 2 * 2 * 256),  # a final LayerNorm per stack
    ],
)
def test_transformer_options_change_the_parameter_count(default_params, over, count):
    params = classic_transformer(default_params, **over)
    assert build_model("transformer", params, 7853, 5893).n_parameters() == count


@pytest.mark.parametrize(
    ("over", "fewer"),
    [
        ({"share_embeddings": True}, 8000 * 256),  # one embedding for both languages
        ({"share_embeddings": True, "tie_embeddings": True}, 2 * 8000 * 256),  # and the output
    ],
)
def test_shared_embeddings_of_a_joint_vocabulary_are_one_matrix(default_params, over, fewer):
    params = classic_transformer(default_params)
    plain = build_model("transformer", params, 8000, 8000)
    shared = build_model("transformer", params.model_copy(update=over), 8000, 8000)
    assert shared.n_parameters() == plain.n_parameters() - fewer
    assert shared.src_embedding is shared.trg_embedding
    with pytest.raises(NMTError, match="needs one joint vocabulary, but the source has 7853"):
        build_model("transformer", params.model_copy(update=over), 7853, 5893)


def test_transformer_refuses_sentences_longer_than_its_positions():
    model = tiny("transformer", max_positions=5)
    src, src_len, _ = batch((6, 4, 2))
    with pytest.raises(NMTError, match="longer than the Transformer's 5"):
        model.encode(src, src_len)


@pytest.mark.parametrize("arch", available_archs())
@pytest.mark.parametrize("forcing", ["on", "mixed"])
def test_consistency_loss_without_dropout_is_the_loss(arch, forcing):
    """With no dropout the two passes agree, so R-Drop's KL term is 0 only if each row is
    paired with its own twin; the loss and gradients are then the plain loss's."""
    model = sharpened(arch, dropout=0.0)
    src, src_len, trg = ragged_batch()
    teacher_force = FORCING[forcing]
    params = list(model.parameters())
    plain = sequence_loss(model, src, src_len, trg, teacher_force, 0.1)
    want = torch.autograd.grad(plain, params, allow_unused=True)
    loss, cross_entropy = consistency_loss(model, src, src_len, trg, teacher_force, 5.0, 0.1)
    assert loss.item() == pytest.approx(plain.item(), rel=1e-5)
    assert cross_entropy.item() == pytest.approx(plain.item(), rel=1e-5)
    got = torch.autograd.grad(loss, params, allow_unused=True)
    for (name, _), a, b in zip(model.named_parameters(), got, want, strict=True):
        assert (a is None) == (b is None), name
        assert a is None or torch.allclose(a, b, rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("per_row_bias", [False, True])
def test_consistency_cross_entropy_is_r_drop_s_loss_with_its_gradients(per_row_bias):
    """The fused node against the loss written with autograd: the mean of the two passes'
    label-smoothed cross-entropies plus alpha / 4 times KL(p1 || p2) + KL(p2 || p1), as
    torch's kl_div computes them."""
    torch.manual_seed(0)
    features = torch.randn(10, 6, requires_grad=True)  # 5 row pairs
    weight = torch.randn(9, 6, requires_grad=True)
    bias = torch.randn(*((10, 9) if per_row_bias else (9,)), requires_grad=True)
    targets = torch.randint(0, 9, (5,)).repeat(2)
    logits = features @ weight.t() + bias
    first, second = logits.log_softmax(-1).chunk(2)
    kl = F.kl_div(second, first, log_target=True, reduction="sum") + F.kl_div(
        first, second, log_target=True, reduction="sum"
    )
    ce = F.cross_entropy(logits, targets, label_smoothing=0.1, reduction="sum") / 2
    want = ce + 3.0 / 4 * kl
    inputs = (features, weight, bias)
    want_grads = torch.autograd.grad(want, inputs)
    got, got_ce = ConsistencyCrossEntropy.apply(features, weight, bias, targets, 0.1, 3.0)
    assert kl.item() > 0.1
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    assert got_ce.item() == pytest.approx(ce.item(), rel=1e-5)
    for a, b in zip(torch.autograd.grad(got, inputs), want_grads, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
