"""Every layer's and head's attention over the source for one translation, for the attention
explorer (`nmt.serve`). The search keeps only what the heatmaps show (`Hypothesis.attention`,
a Transformer's last layer's mean over heads, and nothing from CTranslate2); the chosen
hypothesis is rerun teacher-forced and the model gives every layer and head through the
`Seq2Seq` interface (`attention_layout`, `attention_weights`), whatever its architecture."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt import EOS_ID, SOS_ID
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
def attention_maps(
    translator: Translator, line: str, hypothesis: Hypothesis, max_len: int
) -> AttentionMaps | None:
    """The attention of `translator`'s model while it wrote `hypothesis` of `line` (found by
    either engine, with search length `max_len`); None for a model without attention."""
    model = translator.model
    if model.attention_layout is None:
        return None
    steps = output_steps(hypothesis, max_len)
    target = translator.trg_vocab.words([*hypothesis.tokens, EOS_ID][:steps])
    source = translator.source_positions(line)
    src, src_len = translator.source_tensor(line)
    inputs = torch.tensor([SOS_ID, *hypothesis.tokens][:steps], device=src.device).unsqueeze(1)
    layers = model.attention_weights(src, src_len, inputs)
    return AttentionMaps(source, target, layers.cpu())
