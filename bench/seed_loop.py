"""The seed's training step, written the plain way, over the same parameters as our models.

It is the yardstick for `bench/train_speed.py` and the oracle for the equivalence tests: the
decoder runs one time step at a time in Python, every step's logits are written into a
preallocated `[trg_len, B, V]` tensor (padding included), teacher forcing feeds gold or
argmax tokens step by step, and the attention `Linear` is applied to the decoder state
repeated beside every encoder state, at every step. The encoder packs its input, as our
models do, so both compute the same function; only the way of computing it differs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_packed_sequence

from nmt import PAD_ID
from nmt.models.attention import AttentionSeq2Seq
from nmt.models.gru import GRUSeq2Seq
from nmt.models.lstm import LSTMSeq2Seq
from nmt.rnn import pack
from nmt.seq2seq import Seq2Seq

ARCHS = ("lstm", "gru", "attention")  # the seed's architectures, the ones written here


def _encode(model: Seq2Seq, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Any, Any]:
    embedded = pack(model.dropout(model.src_embedding(src)), src_len)
    if isinstance(model, LSTMSeq2Seq):
        _, state = model.encoder(embedded)
        return state, None
    if isinstance(model, GRUSeq2Seq):
        _, hidden = model.encoder(embedded)
        return hidden, hidden[0]
    packed, hidden = model.encoder(embedded)
    outputs, _ = pad_packed_sequence(packed, total_length=src.shape[0])
    state = torch.tanh(model.bridge(torch.cat([hidden[-2], hidden[-1]], 1)))
    return state, (outputs, src != PAD_ID if model.masked else None)


def _step(model: Seq2Seq, token: torch.Tensor, state: Any, memory: Any) -> tuple[torch.Tensor, Any]:
    """One decoder step as the seed's `Decoder.forward` computes it: logits and new state."""
    embedded = model.dropout(model.trg_embedding(token.unsqueeze(0)))
    if isinstance(model, LSTMSeq2Seq):
        output, state = model.decoder(embedded, state)
        return model.out(output[0]), state
    if isinstance(model, GRUSeq2Seq):
        context = memory.unsqueeze(0)
        output, state = model.decoder(torch.cat([embedded, context], 2), state)
        return model.out(torch.cat([embedded[0], output[0], context[0]], 1)), state
    assert isinstance(model, AttentionSeq2Seq)
    outputs, mask = memory
    repeated = state.unsqueeze(0).repeat(outputs.shape[0], 1, 1)
    energy = torch.tanh(model.attention(torch.cat([repeated, outputs], 2)))
    scores = model.energy(energy).squeeze(2)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=0)
    context = torch.bmm(weights.t().unsqueeze(1), outputs.transpose(0, 1)).transpose(0, 1)
    output, hidden = model.decoder(torch.cat([embedded, context], 2), state.unsqueeze(0))
    return model.out(torch.cat([output[0], context[0], embedded[0]], 1)), hidden[0]


def reference_loss(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    trg: torch.Tensor,
    teacher_force: torch.Tensor,
) -> torch.Tensor:
    """The seed's loss: mean cross-entropy over non-pad targets; teacher_force[t - 1] says
    whether step t + 1 reads the gold token trg[t] or the argmax of step t."""
    state, memory = _encode(model, src, src_len)
    steps, batch = trg.shape
    vocab = model.out.out_features
    outputs = torch.zeros(steps, batch, vocab)
    token = trg[0]
    for t in range(1, steps):
        logits, state = _step(model, token, state, memory)
        outputs[t] = logits
        top1 = logits.argmax(1)
        token = trg[t] if teacher_force[t - 1] else top1
    return F.cross_entropy(outputs[1:].reshape(-1, vocab), trg[1:].reshape(-1), ignore_index=PAD_ID)
