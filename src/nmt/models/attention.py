"""Bahdanau et al. (2015): a bidirectional GRU encoder and a GRU decoder that attends over all
encoder states at every step with additive attention, energy = v . tanh(W [s; h_j] + b).

W [s; h_j] = W_s s + W_h h_j: the encoder half is computed once per batch (`keys`), so each
step only applies W_s to the decoder state, not to L copies of it. Same maths, fewer FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_packed_sequence

from nmt import PAD_ID
from nmt.config import ModelParams
from nmt.models.base import Seq2Seq, init_normal_, pack


@dataclass
class EncoderMemory:
    outputs: torch.Tensor  # [L, B, 2 * hid_dim], zeros at padded positions
    keys: torch.Tensor  # [L, B, attn_dim], W_h h_j + b
    mask: torch.Tensor | None  # [L, B], True at real tokens; None attends to padding too


class AttentionSeq2Seq(Seq2Seq):
    def __init__(self, src_vocab: int, trg_vocab: int, p: ModelParams):
        super().__init__()
        self.hid_dim, self.masked = p.hid_dim, p.masked
        self.src_embedding = nn.Embedding(src_vocab, p.emb_dim)
        self.encoder = nn.GRU(p.emb_dim, p.hid_dim, bidirectional=True)
        self.bridge = nn.Linear(
            2 * p.hid_dim, p.hid_dim
        )  # final fwd/bwd states -> decoder's initial
        self.attention = nn.Linear(p.hid_dim + 2 * p.hid_dim, p.attn_dim)  # W over [s; h_j]
        self.energy = nn.Linear(p.attn_dim, 1, bias=False)  # v
        self.trg_embedding = nn.Embedding(trg_vocab, p.emb_dim)
        self.decoder = nn.GRU(p.emb_dim + 2 * p.hid_dim, p.hid_dim)
        self.out = nn.Linear(p.hid_dim + 2 * p.hid_dim + p.emb_dim, trg_vocab)
        self.dropout = nn.Dropout(p.dropout)
        init_normal_(self)

    def encode(
        self, src: torch.Tensor, src_len: torch.Tensor
    ) -> tuple[torch.Tensor, EncoderMemory]:
        packed, hidden = self.encoder(pack(self.dropout(self.src_embedding(src)), src_len))
        outputs, _ = pad_packed_sequence(packed, total_length=src.shape[0])
        state = torch.tanh(self.bridge(torch.cat([hidden[-2], hidden[-1]], 1)))
        keys = F.linear(outputs, self.attention.weight[:, self.hid_dim :], self.attention.bias)
        mask = src != PAD_ID if self.masked else None
        return state, EncoderMemory(outputs, keys, mask)

    def attend(self, state: torch.Tensor, memory: EncoderMemory) -> torch.Tensor:
        """Attention weights `[L, B]` over source positions, summing to 1 for each sentence."""
        query = F.linear(state, self.attention.weight[:, : self.hid_dim])
        scores = self.energy(torch.tanh(memory.keys + query)).squeeze(2)
        if memory.mask is not None:
            scores = scores.masked_fill(~memory.mask, float("-inf"))
        return torch.softmax(scores, dim=0)

    def decode_step(
        self, token: torch.Tensor, state: torch.Tensor, memory: EncoderMemory
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        embedded = self.dropout(self.trg_embedding(token))
        weights = self.attend(state, memory)
        context = torch.einsum("lb,lbh->bh", weights, memory.outputs)
        output, _ = self.decoder(torch.cat([embedded, context], 1).unsqueeze(0), state.unsqueeze(0))
        state = output[0]
        return torch.cat([state, context, embedded], 1), state, weights
