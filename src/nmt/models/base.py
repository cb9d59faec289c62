"""What every sequence-to-sequence model here shares: the training loss and its decoding loop.

A model defines, over sequence-first tensors:
  encode(src, src_len) -> (decoder state, memory the decoder reads at every step)
  decode(tokens [k, B], state, memory) -> (features [k, B, F], state, attention [k, L, B] | None)
  output_layer(memory, columns) -> weight and bias that turn feature rows into logits
  select_state / select_memory(..., rows) -> the same for some sentences of the batch
`decode` takes a run of k known input tokens at once, so a model whose next input does not
depend on its own output (LSTM, Cho's GRU) runs the whole run in one fused RNN call.

The loss exploits what is known before the loop starts (`teacher_force` is drawn up front):
a step is projected inside the loop only when its prediction feeds the next step, and only
for sentences that have not ended; all logits then go through one cross-entropy node with
one batched backward. That is the seed's computation, without its work on padding, its
per-step bookkeeping, or a second projection of any position.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from nmt import PAD_ID


def pack(embedded: torch.Tensor, src_len: torch.Tensor) -> PackedSequence:
    """Packing makes the encoder skip padding, so its final state is that of the last real token."""
    return pack_padded_sequence(embedded, src_len.cpu(), enforce_sorted=False)


Rows = slice | torch.Tensor  # which sentences of a batch: a slice, or an index tensor


def teacher_forced_runs(teacher_force: torch.Tensor, steps: int) -> list[tuple[int, int]]:
    """Split decoder steps 0..steps-1 into runs [start, end) whose inputs after the first are
    gold tokens: a run ends at each step whose prediction is fed back (teacher_force false)."""
    fed_back = (~teacher_force[: steps - 1]).nonzero().flatten().tolist()
    ends = [step + 1 for step in fed_back] + [steps]
    return list(zip([0, *ends[:-1]], ends, strict=True))


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


class Seq2Seq(nn.Module):
    out: nn.Linear
    # How validation and test loss are measured. The seed scores its RNNs on their own
    # predictions (no teacher forcing); a Transformer is scored on the gold prefix, as it is
    # trained and as its published perplexities are.
    teacher_forced_scoring = False

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[Any, Any]:
        raise NotImplementedError

    def decode(
        self, tokens: torch.Tensor, state: Any, memory: Any
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        raise NotImplementedError

    def select_state(self, state: Any, rows: Rows) -> Any:
        """The decoder state of some sentences of the batch: a slice gives views, an index
        tensor copies (and may repeat or reorder rows, as beam search does)."""
        raise NotImplementedError

    def select_memory(self, memory: Any, rows: Rows) -> Any:
        """The encoder memory of some sentences of the batch, as `select_state`."""
        raise NotImplementedError

    def output_layer(self, memory: Any, columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight `[V, F]` and bias (`[V]`, or `[N, V]` per row) of the output layer for rows
        of sentences `columns` of the batch."""
        return self.out.weight, self.out.bias

    def project(self, features: torch.Tensor, memory: Any, columns: torch.Tensor) -> torch.Tensor:
        """Logits `[N, V]` of feature rows `[N, F]` of sentences `columns` of the batch."""
        weight, bias = self.output_layer(memory, columns)
        return features @ weight.t() + bias

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def loss(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        trg: torch.Tensor,
        teacher_force: torch.Tensor,
        label_smoothing: float = 0.0,
        tokens: float | None = None,
    ) -> torch.Tensor:
        """Mean cross-entropy over the non-padded target tokens trg[1:], or the summed
        cross-entropy divided by `tokens` (a data-parallel rank's share of a batch).

        teacher_force[t - 1] says whether step t + 1 reads the gold token trg[t] or the
        model's own prediction at step t, as in the seed's per-step coin flip.
        """
        # Longest target first: the sentences still going at any step are then a prefix of
        # the batch, and each run decodes only those, never a finished sentence's padding.
        order = (trg != PAD_ID).sum(0).argsort(descending=True, stable=True)
        src, src_len, trg = src[:, order], src_len[order.to(src_len.device)], trg[:, order]
        state, memory = self.encode(src, src_len)
        gold = trg[1:]
        steps = len(gold)
        going = (gold != PAD_ID).sum(1).tolist()  # sentences still going at each step
        # Rows whose logits the loop computed to feed back their argmax, and all other rows.
        fed_rows, fed_targets, fed_logits = [], [], []
        rows, targets, columns = [], [], []
        token = trg[0]
        for start, end in teacher_forced_runs(teacher_force, steps):
            state = self.select_state(state, slice(0, going[start]))
            run_memory = self.select_memory(memory, slice(0, going[start]))
            inputs = torch.cat([token.unsqueeze(0), trg[start + 1 : end]])[:, : going[start]]
            run, state, _ = self.decode(inputs, state, run_memory)
            last = end if end == steps else end - 1
            keep = gold[start:last, : going[start]] != PAD_ID
            rows.append(run[: last - start][keep])
            targets.append(gold[start:last, : going[start]][keep])
            columns.append(keep.nonzero()[:, 1])
            if end == steps:
                break
            n = going[last]
            fed_rows.append(run[-1, :n])
            fed_targets.append(gold[last, :n])
            with torch.no_grad():
                fed_logits.append(
                    self.project(fed_rows[-1], run_memory, torch.arange(n, device=trg.device))
                )
            token = torch.full_like(trg[0], PAD_ID)
            token[:n] = fed_logits[-1].argmax(-1)
        fed_columns = [torch.arange(len(r), device=trg.device) for r in fed_rows]
        weight, bias = self.output_layer(memory, torch.cat([*fed_columns, *columns]))
        # The softmax over the vocabulary stays in float32 under mixed precision.
        with torch.autocast(trg.device.type, enabled=False):
            total = LinearCrossEntropy.apply(
                torch.cat([*fed_rows, *rows]).float(),
                weight.float(),
                bias.float(),
                torch.cat([*fed_targets, *targets]),
                torch.cat(fed_logits).float() if fed_logits else weight.new_empty(0, len(weight)),
                label_smoothing,
            )
        return total / (tokens or sum(going))

    forward = loss  # DDP synchronizes gradients of what runs through the module's forward


def init_normal_(model: nn.Module, std: float = 0.01) -> None:
    """Cho et al. / Bahdanau et al.: weights ~ N(0, std), biases 0."""
    for name, param in model.named_parameters():
        if "bias" in name:
            nn.init.zeros_(param)
        else:
            nn.init.normal_(param, mean=0.0, std=std)
