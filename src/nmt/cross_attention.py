"""Every decoder layer's and head's attention over the source for one translation, for the
attention explorer (`nmt.serve`). The search keeps only what the heatmaps show, the last
layer's mean over heads (`Hypothesis.attention`); a Transformer's other layers and heads are
read by rerunning the chosen hypothesis teacher-forced, with hooks on each layer's
cross-attention, so the model's code stays as the stages load it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nmt import EOS_ID, SOS_ID
from nmt.models.transformer import TransformerSeq2Seq
from nmt.search import Hypothesis
from nmt.translator import Translator


@dataclass
class AttentionMaps:
    source: list[str]  # the columns: the source as the model reads it, <sos> ... <eos>
    target: list[str]  # the rows: the output tokens, and <eos> where it was written
    layers: torch.Tensor  # [layers, heads, rows, columns]; each row sums to 1


def output_steps(hypothesis: Hypothesis, max_len: int) -> int:
    """Decoding steps that wrote the hypothesis: one a token, and one for <eos> unless the
    search stopped at `max_len` (as `nmt.decoding` and CTranslate2 both stop)."""
    return len(hypothesis.tokens) + (len(hypothesis.tokens) < max_len)


@torch.no_grad()
def transformer_attention(
    model: TransformerSeq2Seq,
    src: torch.Tensor,  # [S, 1]
    src_len: torch.Tensor,  # [1]
    inputs: list[int],  # the decoder's inputs: <sos> and the output tokens but the last
) -> torch.Tensor:
    """[layers, heads, len(inputs), S]: softmax(QK^T / sqrt(d)) of each decoder layer's
    cross-attention, from the queries, keys and mask its forward call receives."""
    found: list[torch.Tensor] = []

    def capture(_: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        queries, keys, _values, mask = args[:4]  # [1, heads, T, d], [1, heads, S, d], mask
        scores = queries @ keys.transpose(2, 3) / math.sqrt(queries.shape[-1])
        found.append(scores.masked_fill(~mask, float("-inf")).softmax(-1)[0])

    hooks = [layer.cross_attention.register_forward_pre_hook(capture) for layer in model.decoder]
    try:
        state, memory = model.encode(src, src_len)
        model.decode(torch.tensor(inputs, device=src.device).unsqueeze(1), state, memory)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(found).cpu()


def attention_maps(
    translator: Translator, line: str, hypothesis: Hypothesis, max_len: int
) -> AttentionMaps | None:
    """The attention of `translator`'s model while it wrote `hypothesis` of `line` (found by
    either engine, with search length `max_len`); None for a model without attention."""
    steps = output_steps(hypothesis, max_len)
    target = translator.trg_vocab.words([*hypothesis.tokens, EOS_ID][:steps])
    source = translator.source_positions(line)
    model = translator.model
    if isinstance(model, TransformerSeq2Seq):
        ids = translator.model_input(translator.src_vocab.encode([line]))[0]
        device = next(model.parameters()).device
        src = torch.from_numpy(ids.astype(np.int64)).unsqueeze(1).to(device)
        inputs = [SOS_ID, *hypothesis.tokens][:steps]
        layers = transformer_attention(model, src, torch.tensor([len(ids)]), inputs)
    elif hypothesis.attention is not None:  # one attention: a layer of one head
        layers = hypothesis.attention[None, None]
    else:
        return None
    return AttentionMaps(source, target, layers)
