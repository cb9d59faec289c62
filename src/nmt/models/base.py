"""What every sequence-to-sequence model here shares: the decoding loop and the loss.

A model defines three pieces, over sequence-first tensors:
  encode(src, src_len) -> (decoder state, memory the decoder reads at every step)
  decode_step(token, state, memory) -> (features, state, attention weights or None)
  project(features) -> logits over the target vocabulary
The loop collects each step's features and projects them all in one matmul after the loop,
only at non-padded target positions; a step whose prediction feeds the next input is
projected inside the loop as well, without autograd, just for its argmax.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from nmt import PAD_ID


def pack(embedded: torch.Tensor, src_len: torch.Tensor) -> PackedSequence:
    """Packing makes the encoder skip padding, so its final state is that of the last real token."""
    return pack_padded_sequence(embedded, src_len.cpu(), enforce_sorted=False)


class Seq2Seq(nn.Module):
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Any, Any]:
        raise NotImplementedError

    def decode_step(
        self, token: torch.Tensor, state: Any, memory: Any
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        raise NotImplementedError

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(features)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def decode_features(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        trg: torch.Tensor,
        teacher_force: torch.Tensor,
    ) -> torch.Tensor:
        """Features `[trg_len - 1, B, F]` for predicting trg[1:].

        teacher_force[t - 1] says whether step t + 1 reads the gold token trg[t] or the
        model's own prediction at step t, as in the seed's per-step coin flip.
        """
        state, memory = self.encode(src, src_len)
        token = trg[0]
        features = []
        steps = trg.shape[0]
        for t in range(1, steps):
            step, state, _ = self.decode_step(token, state, memory)
            features.append(step)
            if t == steps - 1:
                break
            if teacher_force[t - 1]:
                token = trg[t]
            else:
                with torch.no_grad():
                    token = self.project(step).argmax(-1)
        return torch.stack(features)

    def loss(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        trg: torch.Tensor,
        teacher_force: torch.Tensor,
    ) -> torch.Tensor:
        """Mean cross-entropy over the non-padded target tokens."""
        features = self.decode_features(src, src_len, trg, teacher_force)
        gold = trg[1:]
        keep = gold != PAD_ID
        return F.cross_entropy(self.project(features[keep]), gold[keep])


def init_normal_(model: nn.Module, std: float = 0.01) -> None:
    """Cho et al. / Bahdanau et al.: weights ~ N(0, std), biases 0."""
    for name, param in model.named_parameters():
        if "bias" in name:
            nn.init.zeros_(param)
        else:
            nn.init.normal_(param, mean=0.0, std=std)
