"""Sutskever et al. (2014): a deep LSTM reads the (reversed) source, another writes the target."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from nmt.config import ModelParams
from nmt.dropout import Dropout
from nmt.rnn import pack
from nmt.seq2seq import Rows, Seq2Seq

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (hidden, cell), each [n_layers, B, hid_dim]


class Params(ModelParams):
    n_layers: int = Field(2, ge=1)  # the seed's depth; the paper stacks 4
    reverse_src: bool = True  # the paper's trick: short dependencies at the sentence start


class LSTMSeq2Seq(Seq2Seq[LSTMState, None]):
    def __init__(self, src_vocab: int, trg_vocab: int, p: Params):
        super().__init__()
        between_layers = p.dropout if p.n_layers > 1 else 0.0
        self.src_embedding = nn.Embedding(src_vocab, p.emb_dim)
        self.encoder = nn.LSTM(p.emb_dim, p.hid_dim, p.n_layers, dropout=between_layers)
        self.trg_embedding = nn.Embedding(trg_vocab, p.emb_dim)
        self.decoder = nn.LSTM(p.emb_dim, p.hid_dim, p.n_layers, dropout=between_layers)
        self.out = nn.Linear(p.hid_dim, trg_vocab)
        self.dropout = Dropout(p.dropout)
        for param in self.parameters():
            nn.init.uniform_(param, -0.08, 0.08)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[LSTMState, None]:
        _, state = self.encoder(pack(self.dropout(self.src_embedding(src)), src_len))
        return state, None  # the final (hidden, cell) is all the decoder gets

    def select_state(self, state: LSTMState, rows: Rows) -> LSTMState:
        return state[0][:, rows], state[1][:, rows]

    def select_memory(self, memory: None, rows: Rows) -> None:
        return None

    def decode(
        self, tokens: torch.Tensor, state: LSTMState, memory: None
    ) -> tuple[torch.Tensor, LSTMState, None]:
        output, state = self.decoder(self.dropout(self.trg_embedding(tokens)), state)
        return output, state, None


MODEL = LSTMSeq2Seq
