"""Vaswani et al. (2017): an encoder-decoder Transformer, sized as the classic Multi30k one.

Each layer is attention and a feed-forward block, each wrapped in dropout, a residual and a
LayerNorm: after the residual (post-norm, the paper's) or before the block (pre-norm, with a
final LayerNorm; trains more stably without warmup). Embeddings are scaled by sqrt(width)
and added to learned or sinusoidal position vectors.

Decoding one token at a time must not recompute the prefix: the decoder state is the keys
and values each self-attention layer has computed so far (a KV cache), and `encode`
computes every layer's cross-attention keys and values once per batch. Inside the model
tensors are batch-first; the Seq2Seq interface is sequence-first, as for the RNNs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal, cast

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from nmt import PAD_ID, NMTError
from nmt.config import ModelParams
from nmt.dropout import Dropout, dropout
from nmt.params_errors import Invalid
from nmt.seq2seq import AttentionLayout, Rows, Seq2Seq


class Params(ModelParams):
    n_layers: int = Field(3, ge=1)
    heads: int = Field(8, ge=1)
    ff_dim: int = Field(512, ge=1)
    positions: Literal["learned", "sinusoidal"] = "learned"
    max_positions: int = Field(100, ge=1)  # longest sentence, <sos> and <eos> included
    norm_first: bool = False  # pre-norm; post-norm (the paper's) when false
    tie_embeddings: bool = False  # the output layer reuses the target embedding
    share_embeddings: bool = False  # source and target share one embedding (a joint vocabulary)
    # Token embeddings drawn like the other matrices (xavier), or N(0, hid_dim^-0.5) (normal):
    # scaled by sqrt(hid_dim), these start at unit size, the size of the position vectors.
    embedding_init: Literal["xavier", "normal"] = "xavier"

    @model_validator(mode="after")
    def _widths(self) -> Params:
        if self.emb_dim != self.hid_dim:
            raise Invalid(f"equal to hid_dim ({self.hid_dim})", self.emb_dim, "emb_dim")
        if self.hid_dim % self.heads:
            raise Invalid(f"a multiple of heads ({self.heads})", self.hid_dim, "hid_dim")
        return self


def sinusoids(positions: int, width: int) -> torch.Tensor:
    """The paper's fixed position vectors: sin and cos of position / 10000^(2i / width)."""
    angles = torch.arange(positions).unsqueeze(1) * torch.exp(
        torch.arange(0, width, 2) * (-math.log(10000.0) / width)
    )
    table = torch.zeros(positions, width)
    table[:, 0::2], table[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return table


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over `heads` subspaces. The projections to queries and
    to keys and values are separate calls (rows of one [W_q; W_k; W_v] matrix), so that the
    cross-attention's keys and values of the encoder output are computed once per batch,
    and a decoding step projects only its new position."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, width] -> [B, heads, T, width / heads]."""
        return x.unflatten(2, (self.heads, -1)).transpose(1, 2)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.in_proj.weight.chunk(3)[0], self.in_proj.bias.chunk(3)[0]
        return self.split_heads(F.linear(x, weight, bias))

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        width = self.in_proj.in_features
        weight, bias = self.in_proj.weight[width:], self.in_proj.bias[width:]
        keys, values = F.linear(x, weight, bias).chunk(2, dim=-1)
        return self.split_heads(keys), self.split_heads(values)

    def forward(
        self,
        queries: torch.Tensor,  # [B, heads, T, d]
        keys: torch.Tensor,  # [B, heads, S, d]
        values: torch.Tensor,
        mask: torch.Tensor | None,  # broadcasts to [B, heads, T, S]; True where allowed
        need_weights: bool = False,
        average_heads: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The attended values merged back to [B, T, width], and when asked the attention
        weights averaged over heads, [B, T, S], or each head's, [B, heads, T, S]."""
        p = self.dropout if self.training else 0.0
        # On the GPU the fused kernel draws its own dropout; on the CPU the weights are
        # formed here, so that the cheap masks of nmt.dropout drop them.
        if need_weights or (p and queries.device.type == "cpu"):
            scores = queries @ keys.transpose(2, 3) / math.sqrt(queries.shape[-1])
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = scores.softmax(-1)
            attended = dropout(weights, p, self.training) @ values
        else:
            weights = None
            attended = F.scaled_dot_product_attention(
                queries, keys, values, attn_mask=mask, dropout_p=p
            )
        merged = attended.transpose(1, 2).flatten(2)
        if weights is None or not need_weights:
            return self.out_proj(merged), None
        return self.out_proj(merged), weights.mean(1) if average_heads else weights


class FeedForward(nn.Sequential):
    def __init__(self, width: int, ff_dim: int, dropout: float):
        super().__init__(
            nn.Linear(width, ff_dim), nn.ReLU(), Dropout(dropout), nn.Linear(ff_dim, width)
        )


class Sublayer(nn.Module):
    """Dropout, residual and LayerNorm around a block, post- or pre-norm."""

    def __init__(self, width: int, dropout: float, norm_first: bool):
        super().__init__()
        self.norm, self.dropout, self.norm_first = (
            nn.LayerNorm(width),
            Dropout(dropout),
            norm_first,
        )

    def block_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) if self.norm_first else x

    def residual(self, x: torch.Tensor, block_output: torch.Tensor) -> torch.Tensor:
        out = x + self.dropout(block_output)
        return out if self.norm_first else self.norm(out)


class EncoderLayer(nn.Module):
    def __init__(self, p: Params):
        super().__init__()
        self.attention = MultiHeadAttention(p.hid_dim, p.heads, p.dropout)
        self.feed_forward = FeedForward(p.hid_dim, p.ff_dim, p.dropout)
        self.around_attention, self.around_feed_forward = (
            Sublayer(p.hid_dim, p.dropout, p.norm_first) for _ in range(2)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.around_attention.block_input(x)
        keys, values = self.attention.keys_values(h)
        attended, _ = self.attention(self.attention.queries(h), keys, values, mask)
        x = self.around_attention.residual(x, attended)
        return self.around_feed_forward.residual(
            x, self.feed_forward(self.around_feed_forward.block_input(x))
        )


class DecoderLayer(nn.Module):
    def __init__(self, p: Params):
        super().__init__()
        self.self_attention = MultiHeadAttention(p.hid_dim, p.heads, p.dropout)
        self.cross_attention = MultiHeadAttention(p.hid_dim, p.heads, p.dropout)
        self.feed_forward = FeedForward(p.hid_dim, p.ff_dim, p.dropout)
        self.around_self, self.around_cross, self.around_feed_forward = (
            Sublayer(p.hid_dim, p.dropout, p.norm_first) for _ in range(3)
        )

    def forward(
        self,
        x: torch.Tensor,  # [B, k, width]: the k new positions
        cache: tuple[torch.Tensor, torch.Tensor],  # keys, values of the earlier positions
        cross: tuple[torch.Tensor, torch.Tensor],  # keys, values of the encoder output
        causal: torch.Tensor | None,  # [k, t + k], True where a position may look
        src_mask: torch.Tensor,  # [B, 1, 1, S]
        need_weights: bool,
        average_heads: bool = True,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor | None]:
        h = self.around_self.block_input(x)
        keys, values = self.self_attention.keys_values(h)
        keys, values = torch.cat([cache[0], keys], 2), torch.cat([cache[1], values], 2)
        attended, _ = self.self_attention(self.self_attention.queries(h), keys, values, causal)
        x = self.around_self.residual(x, attended)
        h = self.around_cross.block_input(x)
        attended, weights = self.cross_attention(
            self.cross_attention.queries(h), *cross, src_mask, need_weights, average_heads
        )
        x = self.around_cross.residual(x, attended)
        x = self.around_feed_forward.residual(
            x, self.feed_forward(self.around_feed_forward.block_input(x))
        )
        return x, (keys, values), weights


@dataclass
class CrossAttentionMemory:
    """What every decoding step reads of the source: each layer's cross-attention keys and
    values of the encoder output, and where the source is padding."""

    cross: list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer: keys, values [B,h,S,d]
    mask: torch.Tensor  # [B, 1, 1, S], True at real source tokens


DecoderCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [B,h,t,d]


class TransformerSeq2Seq(Seq2Seq[DecoderCache, CrossAttentionMemory]):
    teacher_forced_scoring = True

    def __init__(self, src_vocab: int, trg_vocab: int, p: Params):
        super().__init__()
        self.width, self.heads, self.max_positions = p.hid_dim, p.heads, p.max_positions
        self.max_source_positions = self.max_target_positions = p.max_positions
        self.attention_layout = AttentionLayout(p.n_layers, p.heads)
        if p.share_embeddings and src_vocab != trg_vocab:
            raise NMTError(
                f"transformer.model.share_embeddings needs one joint vocabulary, but the source "
                f"has {src_vocab} tokens and the target {trg_vocab}"
            )
        self.src_embedding = nn.Embedding(src_vocab, p.hid_dim)
        self.trg_embedding = (
            self.src_embedding if p.share_embeddings else nn.Embedding(trg_vocab, p.hid_dim)
        )
        if p.positions == "learned":
            self.src_positions = nn.Embedding(p.max_positions, p.hid_dim)
            self.trg_positions = nn.Embedding(p.max_positions, p.hid_dim)
        else:
            table = sinusoids(p.max_positions, p.hid_dim)
            self.src_positions = self.trg_positions = nn.Embedding.from_pretrained(table)
        self.encoder = nn.ModuleList(EncoderLayer(p) for _ in range(p.n_layers))
        self.decoder = nn.ModuleList(DecoderLayer(p) for _ in range(p.n_layers))
        # Pre-norm leaves the last residual un-normalized: one LayerNorm at each stack's end.
        self.encoder_norm = nn.LayerNorm(p.hid_dim) if p.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(p.hid_dim) if p.norm_first else nn.Identity()
        self.out = nn.Linear(p.hid_dim, trg_vocab)
        self.dropout = Dropout(p.dropout)
        for param in self.parameters():
            if param.dim() > 1 and param.requires_grad:  # not the fixed sinusoids
                nn.init.xavier_uniform_(param)
        if p.embedding_init == "normal":
            for embedding in {self.src_embedding, self.trg_embedding}:  # one if shared
                nn.init.normal_(embedding.weight, std=p.hid_dim**-0.5)
        if p.tie_embeddings:
            self.out.weight = self.trg_embedding.weight

    def embed(
        self, tokens: torch.Tensor, embedding: nn.Embedding, positions: nn.Embedding, start: int
    ) -> torch.Tensor:
        """[B, T] ids -> [B, T, width]: scaled token vectors plus those of positions start..."""
        end = start + tokens.shape[1]
        if end > self.max_positions:
            raise NMTError(
                f"a sentence of {end} positions is longer than the Transformer's "
                f"{self.max_positions} (transformer.model.max_positions)"
            )
        where = positions(torch.arange(start, end, device=tokens.device))
        return self.dropout(embedding(tokens) * math.sqrt(self.width) + where)

    def encode(
        self, src: torch.Tensor, src_len: torch.Tensor
    ) -> tuple[DecoderCache, CrossAttentionMemory]:
        src = src.t()
        mask = (src != PAD_ID)[:, None, None, :]
        x = self.embed(src, self.src_embedding, self.src_positions, 0)
        for layer in self.encoder:
            x = layer(x, mask)
        x = self.encoder_norm(x)
        decoder = cast("Iterable[DecoderLayer]", self.decoder)
        cross = [layer.cross_attention.keys_values(x) for layer in decoder]
        empty = x.new_zeros(len(src), self.heads, 0, self.width // self.heads)
        return [(empty, empty)] * len(self.decoder), CrossAttentionMemory(cross, mask)

    def select_state(self, state: DecoderCache, rows: Rows) -> DecoderCache:
        return [(keys[rows], values[rows]) for keys, values in state]

    def select_memory(self, memory: CrossAttentionMemory, rows: Rows) -> CrossAttentionMemory:
        cross = [(keys[rows], values[rows]) for keys, values in memory.cross]
        return replace(memory, cross=cross, mask=memory.mask[rows])

    def decode(
        self, tokens: torch.Tensor, state: DecoderCache, memory: CrossAttentionMemory
    ) -> tuple[torch.Tensor, DecoderCache, torch.Tensor | None]:
        """Features of k new positions, each seeing the earlier ones and itself; outside
        training also the last layer's cross-attention weights, averaged over heads."""
        features, cache, weights = self.run_decoder(tokens, state, memory, every_head=False)
        return features, cache, weights[-1].permute(1, 2, 0) if weights else None

    def attention_weights(
        self, src: torch.Tensor, src_len: torch.Tensor, inputs: torch.Tensor
    ) -> torch.Tensor:
        """Each decoder layer's cross-attention, head by head, as its softmax formed it."""
        state, memory = self.encode(src, src_len)
        _, _, weights = self.run_decoder(inputs, state, memory, every_head=True)
        return torch.stack(weights)[:, 0]

    def run_decoder(
        self,
        tokens: torch.Tensor,
        state: DecoderCache,
        memory: CrossAttentionMemory,
        every_head: bool,
    ) -> tuple[torch.Tensor, DecoderCache, list[torch.Tensor]]:
        """`decode`'s features and cache, with cross-attention weights: every layer's, head
        by head (`[B, heads, k, S]`), when `every_head`; else outside training the last
        layer's mean over heads (`[B, k, S]`), and none in training."""
        tokens = tokens.t()
        start, k = state[0][0].shape[2], tokens.shape[1]
        causal = None  # one new position may see everything before it
        if k > 1:
            causal = torch.ones(k, start + k, dtype=torch.bool, device=tokens.device)
            causal = causal.tril(diagonal=start)
        x = self.embed(tokens, self.trg_embedding, self.trg_positions, start)
        cache, weights = [], []
        for number, layer in enumerate(self.decoder):
            last = number == len(self.decoder) - 1
            x, layer_cache, layer_weights = layer(
                x,
                state[number],
                memory.cross[number],
                causal,
                memory.mask,
                every_head or (last and not self.training),
                not every_head,
            )
            cache.append(layer_cache)
            if layer_weights is not None:
                weights.append(layer_weights)
        return self.decoder_norm(x).transpose(0, 1), cache, weights


MODEL = TransformerSeq2Seq
