"""Bahdanau et al. (2015): a bidirectional GRU encoder and a GRU decoder that attends over all
encoder states at every step with additive attention, energy = v . tanh(W [s; h_j] + b).

W [s; h_j] = W_s s + W_h h_j: the encoder half is computed once per batch (`keys`), so each
step only applies W_s to the decoder state, not to L copies of it. Same maths, fewer FLOPs.
The weights' columns are taken where they are used, so the memory holds only what differs by
sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pad_packed_sequence

from nmt import PAD_ID
from nmt.config import ModelParams
from nmt.dropout import Dropout
from nmt.rnn import gru_step, init_normal_, pack
from nmt.seq2seq import AttentionLayout, Rows, Seq2Seq


class Params(ModelParams):
    attn_dim: int = Field(512, ge=1)  # width of the additive attention's hidden layer
    masked: bool = True  # attend to real source tokens only, not to padding


@dataclass
class Annotations:
    """The encoder states the decoder attends over (the paper's annotations h_j), with
    what each step needs of them precomputed once per batch."""

    outputs: torch.Tensor  # [L, B, 2 * hid_dim], zeros at padded positions
    keys: torch.Tensor  # [L, B, attn_dim], W_h h_j + b
    mask: torch.Tensor | None  # [L, B], True at real tokens; None attends to padding too


class AttentionSeq2Seq(Seq2Seq[torch.Tensor, Annotations]):
    attention_layout = AttentionLayout(1, 1)

    def __init__(self, src_vocab: int, trg_vocab: int, p: Params):
        super().__init__()
        self.emb_dim, self.hid_dim, self.masked = p.emb_dim, p.hid_dim, p.masked
        self.src_embedding = nn.Embedding(src_vocab, p.emb_dim)
        self.encoder = nn.GRU(p.emb_dim, p.hid_dim, bidirectional=True)
        self.bridge = nn.Linear(2 * p.hid_dim, p.hid_dim)  # final fwd/bwd -> decoder's first
        self.attention = nn.Linear(p.hid_dim + 2 * p.hid_dim, p.attn_dim)  # W over [s; h_j]
        self.energy = nn.Linear(p.attn_dim, 1, bias=False)  # v
        self.trg_embedding = nn.Embedding(trg_vocab, p.emb_dim)
        self.decoder = nn.GRU(p.emb_dim + 2 * p.hid_dim, p.hid_dim)  # over [emb; context]
        self.out = nn.Linear(p.hid_dim + 2 * p.hid_dim + p.emb_dim, trg_vocab)
        self.dropout = Dropout(p.dropout)
        init_normal_(self)

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, Annotations]:
        packed, hidden = self.encoder(pack(self.dropout(self.src_embedding(src)), src_len))
        outputs, _ = pad_packed_sequence(packed, total_length=src.shape[0])
        state = torch.tanh(self.bridge(torch.cat([hidden[-2], hidden[-1]], 1)))
        return state, Annotations(
            outputs=outputs,
            keys=F.linear(outputs, self.score_weights()[1], self.attention.bias),
            mask=src != PAD_ID if self.masked else None,
        )

    def score_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """W_s and W_h: the attention's columns over the decoder state and the annotations."""
        return self.attention.weight.split([self.hid_dim, 2 * self.hid_dim], 1)

    def gate_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's input-gate columns over the embedding and over the attention context."""
        return self.decoder.get_parameter("weight_ih_l0").split([self.emb_dim, 2 * self.hid_dim], 1)

    def state_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[W_hh; W_s] and [b_hh; 0]: the GRU's hidden gates and the query in one matmul."""
        query_weight, bias = self.score_weights()[0], self.decoder.get_parameter("bias_hh_l0")
        weight = torch.cat([self.decoder.get_parameter("weight_hh_l0"), query_weight])
        return weight, torch.cat([bias, bias.new_zeros(query_weight.shape[0])])

    def select_state(self, state: torch.Tensor, rows: Rows) -> torch.Tensor:
        return state[rows]

    def select_memory(self, memory: Annotations, rows: Rows) -> Annotations:
        mask = None if memory.mask is None else memory.mask[:, rows]
        return Annotations(outputs=memory.outputs[:, rows], keys=memory.keys[:, rows], mask=mask)

    def attend(self, query: torch.Tensor, memory: Annotations) -> torch.Tensor:
        """Attention weights `[L, B]` over source positions, summing to 1 for each sentence."""
        scores = self.energy(torch.tanh(memory.keys + query)).squeeze(2)
        if memory.mask is not None:
            scores = scores.masked_fill(~memory.mask, float("-inf"))
        return torch.softmax(scores, dim=0)

    def decode(
        self, tokens: torch.Tensor, state: torch.Tensor, memory: Annotations
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step by step, as each step attends from the state the previous step produced; the
        embedding's share of the input gates is computed for the whole run at once.

        A step takes the weights it uses itself, not once per run, so a weight's gradient adds
        up the steps of the whole batch one at a time; taken once per run, each run's steps
        would be added up first, and the trained weights would round differently."""
        embedded = self.dropout(self.trg_embedding(tokens))
        embedding_gates = F.linear(
            embedded, self.gate_weights()[0], self.decoder.get_parameter("bias_ih_l0")
        )
        gate_width = 3 * self.hid_dim
        features, weights = [], []
        for step, gates in zip(embedded.unbind(0), embedding_gates.unbind(0), strict=True):
            state_weight, state_bias = self.state_layer()
            hidden_gates, query = F.linear(state, state_weight, state_bias).split(
                [gate_width, state_weight.shape[0] - gate_width], 1
            )
            weight = self.attend(query, memory)
            context = torch.einsum("lb,lbh->bh", weight, memory.outputs)
            gates = gates + F.linear(context, self.gate_weights()[1])
            state = gru_step(gates, state, hidden_gates)
            features.append(torch.cat([state, context, step], 1))
            weights.append(weight)
        return torch.stack(features), state, torch.stack(weights)


MODEL = AttentionSeq2Seq
