"""Teacher-forced decoding of a batch: the rows the decoder predicts from, and the output
layer that projects them, for the loss (`nmt.loss`) of any model (`nmt.seq2seq`).

It exploits what is known before the loop starts (`teacher_force` is drawn up front): a step
is projected inside the loop only when its prediction feeds the next step, and only for
sentences that have not ended; the loss then puts all rows through one cross-entropy node
with one batched backward. That is the seed's computation, without its work on padding, its
per-step bookkeeping, or a second projection of any position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from nmt import PAD_ID

if TYPE_CHECKING:
    from nmt.seq2seq import Seq2Seq


def teacher_forced_runs(teacher_force: torch.Tensor, steps: int) -> list[tuple[int, int]]:
    """Split decoder steps 0..steps-1 into runs [start, end) whose inputs after the first are
    gold tokens: a run ends at each step whose prediction is fed back (teacher_force false)."""
    fed_back = (~teacher_force[: steps - 1]).nonzero().flatten().tolist()
    ends = [step + 1 for step in fed_back] + [steps]
    return list(zip([0, *ends[:-1]], ends, strict=True))


@dataclass
class DecoderRows:
    """What a batch's decoder predicts from: one row per non-padded target token, in the order
    the loss sees them, with the output layer that projects them."""

    features: torch.Tensor  # [N, F]
    weight: torch.Tensor  # [V, F]
    bias: torch.Tensor  # [V], or [N, V] per row
    targets: torch.Tensor  # [N]
    known: torch.Tensor  # [n, V] logits of the first n rows, computed to feed back their argmax
    steps: torch.Tensor  # [N] each row's decoder step
    columns: torch.Tensor  # [N] each row's sentence: its column in the batch as given
    tokens: int  # N


def decoder_rows(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    trg: torch.Tensor,
    teacher_force: torch.Tensor,
) -> DecoderRows:
    """Run the decoder over the batch: teacher_force[t - 1] says whether step t + 1 reads the
    gold token trg[t] or the model's own prediction at step t, as in the seed's per-step coin
    flip."""
    # Longest target first: the sentences still going at any step are then a prefix of
    # the batch, and each run decodes only those, never a finished sentence's padding.
    order = (trg != PAD_ID).sum(0).argsort(descending=True, stable=True)
    src, src_len, trg = src[:, order], src_len[order.to(src_len.device)], trg[:, order]
    state, memory = model.encode(src, src_len)
    gold = trg[1:]
    steps = len(gold)
    going = (gold != PAD_ID).sum(1).tolist()  # sentences still going at each step
    # Rows whose logits the loop computed to feed back their argmax, and all other rows.
    fed_rows, fed_targets, fed_logits, fed_steps = [], [], [], []
    rows, targets, columns, row_steps = [], [], [], []
    token = trg[0]
    for start, end in teacher_forced_runs(teacher_force, steps):
        state = model.select_state(state, slice(0, going[start]))
        run_memory = model.select_memory(memory, slice(0, going[start]))
        inputs = torch.cat([token.unsqueeze(0), trg[start + 1 : end]])[:, : going[start]]
        run, state, _ = model.decode(inputs, state, run_memory)
        last = end if end == steps else end - 1
        keep = gold[start:last, : going[start]] != PAD_ID
        rows.append(run[: last - start][keep])
        targets.append(gold[start:last, : going[start]][keep])
        where = keep.nonzero()
        columns.append(where[:, 1])
        row_steps.append(where[:, 0] + start)
        if end == steps:
            break
        n = going[last]
        fed_rows.append(run[-1, :n])
        fed_targets.append(gold[last, :n])
        fed_steps.append(torch.full((n,), last, device=trg.device))
        with torch.no_grad():
            fed_logits.append(
                model.project(fed_rows[-1], run_memory, torch.arange(n, device=trg.device))
            )
        token = torch.full_like(trg[0], PAD_ID)
        token[:n] = fed_logits[-1].argmax(-1)
    fed_columns = [torch.arange(len(r), device=trg.device) for r in fed_rows]
    all_columns = torch.cat([*fed_columns, *columns])
    weight, bias = model.output_layer(memory, all_columns)
    return DecoderRows(
        features=torch.cat([*fed_rows, *rows]),
        weight=weight,
        bias=bias,
        targets=torch.cat([*fed_targets, *targets]),
        known=torch.cat(fed_logits) if fed_logits else weight.new_empty(0, len(weight)),
        steps=torch.cat([*fed_steps, *row_steps]),
        columns=order.to(trg.device)[all_columns],
        tokens=sum(going),
    )
