"""The interface every sequence-to-sequence model here implements, so that one loss
(`nmt.loss`) and one greedy and beam search (`nmt.decoding`) serve all architectures. It
knows neither: they import it.

A model defines, over sequence-first tensors:
  encode(src, src_len) -> (decoder state, memory the decoder reads at every step)
  decode(tokens [k, B], state, memory) -> (features [k, B, F], state, attention [k, L, B] | None)
  output_layer(memory, columns) -> weight and bias that turn feature rows into logits
  select_state / select_memory(..., rows) -> the same for some sentences of the batch
  attention_weights(src, src_len, inputs) -> each layer's and head's [layers, heads, T, S]
`decode` takes a run of k known input tokens at once, so a model whose next input does not
depend on its own output (LSTM, Cho's GRU) runs the whole run in one fused RNN call.
"""

from __future__ import annotations

from typing import Generic, NamedTuple, TypeVar

import torch
from torch import nn

from nmt import NMTError

State = TypeVar("State")  # what the decoder carries from step to step
Memory = TypeVar("Memory")  # what the decoder reads of the source at every step
Rows = slice | torch.Tensor  # which sentences of a batch: a slice, or an index tensor


class AttentionLayout(NamedTuple):
    """The attention over the source a model can show: `layers` of `heads` each."""

    layers: int
    heads: int


class Seq2Seq(nn.Module, Generic[State, Memory]):
    out: nn.Linear
    # How validation and test loss are measured. The seed scores its RNNs on their own
    # predictions (no teacher forcing); a Transformer is scored on the gold prefix, as it is
    # trained and as its published perplexities are.
    teacher_forced_scoring = False
    # The longest source the model reads, <sos> and <eos> included; None: any length.
    max_source_positions: int | None = None
    # The longest output in tokens, <eos> included: each decoding step reads a position,
    # <sos> first. None: any length.
    max_target_positions: int | None = None
    # What `attention_weights` gives; None: the model does not attend to the source.
    attention_layout: AttentionLayout | None = None

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[State, Memory]:
        raise NotImplementedError

    def decode(
        self, tokens: torch.Tensor, state: State, memory: Memory
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        raise NotImplementedError

    def attention_weights(
        self,
        src: torch.Tensor,  # [S, 1]: one sentence
        src_len: torch.Tensor,  # [1]
        inputs: torch.Tensor,  # [T, 1]: the decoder's inputs, <sos> first
    ) -> torch.Tensor:
        """Every layer's and head's attention over the source while the decoder reads
        `inputs` (teacher-forced), `[layers, heads, T, S]` as `attention_layout` says, each
        row summing to 1: what an explorer shows of a translation. A model with one
        attention has it from `decode`, as a layer of one head."""
        state, memory = self.encode(src, src_len)
        _, _, weights = self.decode(inputs, state, memory)
        if weights is None:
            raise NMTError(f"a {type(self).__name__} has no attention to show")
        return weights[:, :, 0][None, None]

    def select_state(self, state: State, rows: Rows) -> State:
        """The decoder state of some sentences of the batch: a slice gives views, an index
        tensor copies (and may repeat or reorder rows, as beam search does)."""
        raise NotImplementedError

    def select_memory(self, memory: Memory, rows: Rows) -> Memory:
        """The encoder memory of some sentences of the batch, as `select_state`. The memory
        holds only what differs by sentence (weights stay on the model), so every tensor in
        it is selected."""
        raise NotImplementedError

    def output_layer(
        self, memory: Memory, columns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight `[V, F]` and bias (`[V]`, or `[N, V]` per row) of the output layer for rows
        of sentences `columns` of the batch."""
        return self.out.weight, self.out.bias

    def project(
        self, features: torch.Tensor, memory: Memory, columns: torch.Tensor
    ) -> torch.Tensor:
        """Logits `[N, V]` of feature rows `[N, F]` of sentences `columns` of the batch."""
        weight, bias = self.output_layer(memory, columns)
        return features @ weight.t() + bias

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
