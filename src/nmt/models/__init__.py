"""The architectures, by the name params.yaml and the stages use for them."""

from __future__ import annotations

from nmt.config import ModelParams
from nmt.models.attention import AttentionSeq2Seq
from nmt.models.base import Seq2Seq
from nmt.models.gru import GRUSeq2Seq
from nmt.models.lstm import LSTMSeq2Seq
from nmt.models.transformer import TransformerSeq2Seq

__all__ = [
    "MODELS",
    "AttentionSeq2Seq",
    "GRUSeq2Seq",
    "LSTMSeq2Seq",
    "Seq2Seq",
    "TransformerSeq2Seq",
    "build_model",
]

MODELS: dict[str, type[Seq2Seq]] = {
    "lstm": LSTMSeq2Seq,
    "gru": GRUSeq2Seq,
    "attention": AttentionSeq2Seq,
    "transformer": TransformerSeq2Seq,
}


def build_model(p: ModelParams, src_vocab: int, trg_vocab: int) -> Seq2Seq:
    return MODELS[p.arch](src_vocab, trg_vocab, p)
