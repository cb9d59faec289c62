"""The loss of a model over a whole dataset: validation during training, test loss in evaluation.

It lives apart from training so that the evaluate stage depends on this and not on the trainer.
"""

from __future__ import annotations

import torch

from nmt.batching import ParallelData
from nmt.models import Seq2Seq
from nmt.runtime import Ranks


@torch.no_grad()
def evaluate_loss(
    model: Seq2Seq, data: ParallelData, batch_size: int, ranks: Ranks | None = None
) -> float:
    """Mean cross-entropy per target token; the model reads its own predictions unless it is
    scored teacher-forced (`Seq2Seq.teacher_forced_scoring`). Ranks share every batch."""
    ranks = ranks or Ranks()
    model.eval()
    device = next(model.parameters()).device
    total = tokens = 0.0
    for index in data.batch_indices(batch_size):
        share = index[ranks.rank :: ranks.world]
        if len(share) == 0:
            continue
        batch = data.collate(share).to(device)
        forcing = torch.full((batch.trg.shape[0],), model.teacher_forced_scoring)
        n = batch.n_trg_tokens
        total += model.loss(batch.src, batch.src_len, batch.trg, forcing).item() * n
        tokens += n
    total, tokens = ranks.sum(total, tokens)
    return total / tokens
