"""Cho et al. (2014): the encoder's final state is a context vector that the decoder reads at
every step, both as GRU input and in the output layer, beside the embedding and hidden state."""

from __future__ import annotations

import torch
from torch import nn

from nmt.config import ModelParams
from nmt.models.base import Seq2Seq, init_normal_, pack


class GRUSeq2Seq(Seq2Seq):
    def __init__(self, src_vocab: int, trg_vocab: int, p: ModelParams):
        super().__init__()
        self.src_embedding = nn.Embedding(src_vocab, p.emb_dim)
        self.encoder = nn.GRU(p.emb_dim, p.hid_dim)
        self.trg_embedding = nn.Embedding(trg_vocab, p.emb_dim)
        self.decoder = nn.GRU(p.emb_dim + p.hid_dim, p.hid_dim)
        self.out = nn.Linear(p.emb_dim + 2 * p.hid_dim, trg_vocab)
        self.dropout = nn.Dropout(p.dropout)
        init_normal_(self)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, hidden = self.encoder(pack(self.dropout(self.src_embedding(src)), src_len))
        return hidden, hidden[0]  # decoder state [1, B, H] and context [B, H]

    def decode_step(
        self, token: torch.Tensor, state: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        embedded = self.dropout(self.trg_embedding(token))
        output, state = self.decoder(torch.cat([embedded, context], 1).unsqueeze(0), state)
        return torch.cat([embedded, output[0], context], 1), state, None
