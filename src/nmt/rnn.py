"""What the recurrent architectures share: packed encoder input, one GRU step from its gate
pre-activations, and the normal initialization of Cho et al. and Bahdanau et al."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence


def pack(embedded: torch.Tensor, src_len: torch.Tensor) -> PackedSequence:
    """Packing makes the encoder skip padding, so its final state is that of the last real token."""
    return pack_padded_sequence(embedded, src_len.cpu(), enforce_sorted=False)


def gru_step(
    input_gates: torch.Tensor, hidden: torch.Tensor, hidden_gates: torch.Tensor
) -> torch.Tensor:
    """One step of `nn.GRU` (gate order r, z, n) from its two gate pre-activations,
    W_i x + b_i and W_h h + b_h, which callers compute where it is cheapest: a decoder whose
    input is partly constant or known for a whole run computes that part once, not per step."""
    input_r, input_z, input_n = input_gates.chunk(3, 1)
    hidden_r, hidden_z, hidden_n = hidden_gates.chunk(3, 1)
    reset = torch.sigmoid(input_r + hidden_r)
    update = torch.sigmoid(input_z + hidden_z)
    new = torch.tanh(input_n + reset * hidden_n)
    return new + update * (hidden - new)


def init_normal_(model: nn.Module, std: float = 0.01) -> None:
    """Cho et al. / Bahdanau et al.: weights ~ N(0, std), biases 0."""
    for name, param in model.named_parameters():
        if "bias" in name:
            nn.init.zeros_(param)
        else:
            nn.init.normal_(param, mean=0.0, std=std)
