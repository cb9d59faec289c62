"""The loss of a sequence-to-sequence model (`nmt.seq2seq`): of a batch, from the rows its
teacher-forced decoding gives (`nmt.teacher_forcing`), through one cross-entropy node with
one batched backward; of a training batch, R-Drop's where `train.rdrop_alpha` asks for it
(`consistency_loss`: it needs the full output distributions of two passes); and of a data
set, for validation and the evaluate stage, which need no training code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from nmt.teacher_forcing import decoder_rows

if TYPE_CHECKING:
    from nmt.batching import ParallelData
    from nmt.config import TrainParams
    from nmt.runtime import Ranks
    from nmt.seq2seq import Seq2Seq


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


class TrainingLoss(torch.nn.Module):
    """A model's training loss as a module's forward, for DDP: it synchronizes the gradients
    of what runs through a forward. Gives the loss to minimise and the cross-entropy to log
    (the same, unless a consistency term is added: `train.rdrop_alpha`)."""

    def __init__(self, model: Seq2Seq, params: TrainParams):
        super().__init__()
        self.model = model
        self.label_smoothing, self.rdrop_alpha = params.label_smoothing, params.rdrop_alpha

    def forward(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        trg: torch.Tensor,
        teacher_force: torch.Tensor,
        tokens: float | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.rdrop_alpha:
            return consistency_loss(
                self.model,
                src,
                src_len,
                trg,
                teacher_force,
                self.rdrop_alpha,
                self.label_smoothing,
                tokens,
            )
        loss = sequence_loss(
            self.model, src, src_len, trg, teacher_force, self.label_smoothing, tokens
        )
        return loss, loss


@torch.no_grad()
def evaluate_loss(
    model: Seq2Seq, data: ParallelData, batch_size: int, ranks: Ranks | None = None
) -> float:
    """Mean cross-entropy per target token; the model reads its own predictions unless it is
    scored teacher-forced (`Seq2Seq.teacher_forced_scoring`). Ranks share every batch."""
    rank, world = (ranks.rank, ranks.world) if ranks is not None else (0, 1)
    model.eval()
    device = next(model.parameters()).device
    total = tokens = 0.0
    for index in data.batch_indices(batch_size):
        share = index[rank::world]
        if len(share) == 0:
            continue
        batch = data.collate(share).to(device)
        forcing = torch.full((batch.trg.shape[0],), model.teacher_forced_scoring)
        n = batch.n_trg_tokens
        total += sequence_loss(model, batch.src, batch.src_len, batch.trg, forcing).item() * n
        tokens += n
    if ranks is not None:
        total, tokens = ranks.sum(total, tokens)
    return total / tokens
