"""The loss of a sequence-to-sequence model (`nmt.seq2seq`) on one batch.

The loss exploits what is known before the loop starts (`teacher_force` is drawn up front):
a step is projected inside the loop only when its prediction feeds the next step, and only
for sentences that have not ended; all logits then go through one cross-entropy node with
one batched backward. That is the seed's computation, without its work on padding, its
per-step bookkeeping, or a second projection of any position. `consistency_loss` adds
R-Drop's regulariser, which needs the full output distributions of two passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


class LinearCrossEntropy(torch.autograd.Function):
    """Summed cross-entropy of the logits `features @ weight.T + bias`, as one autograd node.

    The first rows' logits may come precomputed (`known`): the decoding loop computed them
    without autograd for its argmax, and they are reused, not recomputed. The backward is then
    two large matmuls over all rows, instead of a small weight-gradient matmul (and a 30 MB
    gradient buffer) for every step whose prediction was fed back.
    """

    @staticmethod
    def forward(
        ctx: Any,
        features: torch.Tensor,  # [N, F]
        weight: torch.Tensor,  # [V, F]
        bias: torch.Tensor,  # [V], or [N, V] for a per-sentence bias
        targets: torch.Tensor,  # [N]
        known: torch.Tensor,  # [n, V] logits of the first n rows
        smoothing: float = 0.0,  # label smoothing, as F.cross_entropy's `label_smoothing`
    ) -> torch.Tensor:
        # Every [N, V] step works in one buffer: fresh buffers of this size cost page faults.
        logits = torch.empty(len(features), len(weight), dtype=weight.dtype, device=weight.device)
        n = len(known)
        logits[:n] = known
        torch.addmm(bias if bias.dim() == 1 else bias[n:], features[n:], weight.t(), out=logits[n:])
        logits -= logits.max(1, keepdim=True).values
        target_logits = logits.gather(1, targets.unsqueeze(1))
        # The target distribution is (1 - smoothing) on the gold token + smoothing / V on all.
        mean_logits = logits.mean(1, keepdim=True) if smoothing else None
        totals = logits.exp_().sum(1, keepdim=True)
        if mean_logits is None:
            loss = (totals.log() - target_logits).sum()
        else:
            loss = (totals.log() - (1 - smoothing) * target_logits - smoothing * mean_logits).sum()
        ctx.save_for_backward(features, weight, targets, logits.div_(totals))  # softmax
        ctx.per_row_bias, ctx.smoothing = bias.dim() == 2, smoothing
        return loss

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        features, weight, targets, probs = ctx.saved_tensors
        if ctx.smoothing:
            probs -= ctx.smoothing / probs.shape[1]
        grad_logits = probs.index_put_(
            (torch.arange(len(targets), device=targets.device), targets),
            torch.tensor(-(1.0 - ctx.smoothing), device=probs.device),
            accumulate=True,
        ).mul_(grad)
        grad_bias = grad_logits if ctx.per_row_bias else grad_logits.sum(0)
        return grad_logits @ weight, grad_logits.t() @ features, grad_bias, None, None, None


class ConsistencyCrossEntropy(torch.autograd.Function):
    """R-Drop's loss summed over row pairs, as one autograd node: the first half of the rows
    and the second are the two passes over the same targets. Returns the loss,
    (CE_1 + CE_2) / 2 + alpha / 4 (KL(p1 || p2) + KL(p2 || p1)), and its cross-entropy part.

    The logits, log-probabilities and probabilities are each one [2N, V] buffer, and the
    backward is written out, so that no autograd graph of [N, V] temporaries is kept; for a
    pass's logits z1 (with d = log p1 - log p2, per row KL12 = sum p1 d):
    dK/dz1 = p1 (d - KL12) + p1 - p2, and the same with the passes swapped."""

    @staticmethod
    def forward(
        ctx: Any,
        features: torch.Tensor,  # [2N, F]
        weight: torch.Tensor,  # [V, F]
        bias: torch.Tensor,  # [V], or [2N, V] per row
        targets: torch.Tensor,  # [2N]
        smoothing: float,
        alpha: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs = torch.addmm(bias, features, weight.t())
        log_probs -= log_probs.max(1, keepdim=True).values
        probs = log_probs.exp()
        totals = probs.sum(1, keepdim=True)
        probs /= totals
        log_probs -= totals.log_()
        gold = log_probs.gather(1, targets.unsqueeze(1))
        cross_entropy = -((1 - smoothing) * gold.sum() + smoothing * log_probs.mean(1).sum()) / 2
        first, second = probs.chunk(2)
        log_ratio = log_probs[: len(first)].sub_(log_probs[len(first) :])  # d, over log p1
        symmetric_kl = ((first - second) * log_ratio).sum()
        ctx.save_for_backward(features, weight, targets, probs, log_ratio)
        ctx.per_row_bias, ctx.smoothing, ctx.alpha = bias.dim() == 2, smoothing, alpha
        ctx.mark_non_differentiable(cross_entropy)
        return cross_entropy + alpha / 4 * symmetric_kl, cross_entropy

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        features, weight, targets, probs, log_ratio = ctx.saved_tensors
        first, second = probs.chunk(2)
        kl_first = (first * log_ratio).sum(1, keepdim=True)  # KL(p1 || p2) per row
        kl_second = -(second * log_ratio).sum(1, keepdim=True)  # KL(p2 || p1)
        grad_logits = torch.empty_like(probs)
        near, far = grad_logits.chunk(2)
        torch.mul(first, log_ratio.sub(kl_first), out=near)
        torch.mul(second, log_ratio.add_(kl_second).neg_(), out=far)  # log_ratio is spent
        difference = first - second
        near += difference
        far -= difference
        grad_logits *= ctx.alpha / 4
        grad_logits += probs / 2
        grad_logits -= ctx.smoothing / probs.shape[1] / 2
        grad_logits.index_put_(
            (torch.arange(len(targets), device=targets.device), targets),
            torch.tensor(-(1.0 - ctx.smoothing) / 2, device=probs.device),
            accumulate=True,
        ).mul_(grad)
        grad_bias = grad_logits if ctx.per_row_bias else grad_logits.sum(0)
        return grad_logits @ weight, grad_logits.t() @ features, grad_bias, None, None, None


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


def sequence_loss(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    trg: torch.Tensor,
    teacher_force: torch.Tensor,
    label_smoothing: float = 0.0,
    tokens: float | None = None,
) -> torch.Tensor:
    """Mean cross-entropy over the non-padded target tokens trg[1:], or the summed
    cross-entropy divided by `tokens` (a data-parallel rank's share of a batch)."""
    rows = decoder_rows(model, src, src_len, trg, teacher_force)
    # The softmax over the vocabulary stays in float32 under mixed precision.
    with torch.autocast(trg.device.type, enabled=False):
        total = LinearCrossEntropy.apply(
            rows.features.float(),
            rows.weight.float(),
            rows.bias.float(),
            rows.targets,
            rows.known.float(),
            label_smoothing,
        )
    return total / (tokens or rows.tokens)


def consistency_loss(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    trg: torch.Tensor,
    teacher_force: torch.Tensor,
    alpha: float,
    label_smoothing: float = 0.0,
    tokens: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """R-Drop (Liang et al. 2021): the batch goes through the model twice, with independent
    dropout masks, and the loss adds the symmetric KL divergence between the two passes'
    output distributions at every target token to their cross-entropies:
    (CE_1 + CE_2) / 2 + alpha / 4 (KL(p1 || p2) + KL(p2 || p1)), the paper's loss halved so
    that alpha 0 is the usual loss. Both passes run as one batch of twice the sentences.

    Returns the loss to minimise and, for the log, the mean cross-entropy alone."""
    width = trg.shape[1]
    twice = decoder_rows(
        model, src.repeat(1, 2), src_len.repeat(2), trg.repeat(1, 2), teacher_force
    )
    # Both passes have a row for every (step, sentence): order each pass's rows alike.
    copy, sentence = twice.columns // width, twice.columns % width
    pair = (copy * (len(trg) + 1) + twice.steps) * width + sentence
    order = pair.argsort()
    bias = twice.bias[order] if twice.bias.dim() == 2 else twice.bias
    with torch.autocast(trg.device.type, enabled=False):
        total, cross_entropy = ConsistencyCrossEntropy.apply(
            twice.features[order].float(),
            twice.weight.float(),
            bias.float(),
            twice.targets[order],
            label_smoothing,
            alpha,
        )
    count = tokens or twice.tokens / 2
    return total / count, cross_entropy / count
