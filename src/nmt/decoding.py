"""Translation by greedy and beam search, batched, for every architecture.

Both run the model's own `encode` / `decode` / `project`, one step at a time for a whole
batch of sentences (beam search: of sentences x beams), until every hypothesis has emitted
<eos> or `max_len` tokens. A hypothesis's score is the sum of its tokens' log-probabilities,
<eos> included; beam search picks the best final beam by score / length penalty.

A sentence that is done (greedy: it emitted <eos>; beam: all its beams did) only pads from
then on, so it leaves the batch: once the done ones are a quarter of the rows (`COMPACT`),
the state and memory keep only the others. What is recorded of each step is the same as
without leaving: the done ones' rows get <pad> at no cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from nmt import EOS_ID, PAD_ID, SOS_ID
from nmt.batching import pad
from nmt.search import Hypothesis, SearchSettings
from nmt.seq2seq import Seq2Seq

COMPACT = 0.25  # drop the done sentences' rows once they are this share of the rows


class LiveRows:
    """Which rows of the whole batch the decoder still computes, and the step records of
    all rows of the batch, with <pad> at no cost in the rows that left."""

    def __init__(self, n: int, device: torch.device):
        self.n = n
        self.alive = torch.arange(n, device=device)  # the batch's rows the decoder computes

    def tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.alive.new_full((self.n,), PAD_ID).index_put_((self.alive,), tokens)

    def values(self, values: torch.Tensor) -> torch.Tensor:
        return values.new_zeros(self.n).index_put_((self.alive,), values)

    def origins(self, origin: torch.Tensor) -> torch.Tensor:
        """Back-pointers in the whole batch's rows: a row that left points to itself."""
        everyone = torch.arange(self.n, device=self.alive.device)
        return everyone.index_put_((self.alive,), self.alive[origin])

    def weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Attention [L, rows] of the alive rows into [L, n]."""
        full = weights.new_zeros(weights.shape[0], self.n)
        full[:, self.alive] = weights
        return full

    def keep(self, kept: torch.Tensor) -> None:
        self.alive = self.alive[kept]


def length_penalty(length: torch.Tensor, alpha: float) -> torch.Tensor:
    """GNMT's ((5 + length) / 6) ** alpha; alpha 0 ranks by raw log-probability."""
    return ((5 + length) / 6) ** alpha


def never_emitted(log_probs: torch.Tensor) -> torch.Tensor:
    """<pad> and <sos> are never targets in training, so they are never output either."""
    log_probs[:, [PAD_ID, SOS_ID]] = float("-inf")
    return log_probs


def _hypotheses(
    tokens: torch.Tensor,  # [steps, N]
    log_probs: torch.Tensor,  # [steps, N], of each chosen token
    attention: list[torch.Tensor],  # per step [L, N], or empty
    src_len: torch.Tensor,  # [N]
) -> list[Hypothesis]:
    tokens, log_probs, attention = tokens.cpu(), log_probs.cpu(), [a.cpu() for a in attention]
    hypotheses = []
    for column in range(tokens.shape[1]):
        sequence = tokens[:, column].tolist()
        length = sequence.index(EOS_ID) + 1 if EOS_ID in sequence else len(sequence)
        weights = None
        if attention:
            weights = torch.stack([a[: src_len[column], column] for a in attention[:length]])
        hypotheses.append(
            Hypothesis(
                tokens=[t for t in sequence[:length] if t != EOS_ID],
                score=float(log_probs[:length, column].sum()),
                attention=weights,
            )
        )
    return hypotheses


@torch.no_grad()
def greedy_search(
    model: Seq2Seq, src: torch.Tensor, src_len: torch.Tensor, max_len: int
) -> list[Hypothesis]:
    """The most probable token at every step, for each sentence of the batch."""
    batch = src.shape[1]
    state, memory = model.encode(src, src_len)
    device = src.device
    token = torch.full((batch,), SOS_ID, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    rows = LiveRows(batch, device)
    tokens, scores, attention = [], [], []
    for _ in range(max_len):
        features, state, weights = model.decode(token.unsqueeze(0), state, memory)
        columns = torch.arange(len(token), device=device)
        log_probs = never_emitted(model.project(features[0], memory, columns).log_softmax(-1))
        best, token = log_probs.max(-1)
        tokens.append(rows.tokens(token))
        scores.append(rows.values(best))
        if weights is not None:
            attention.append(rows.weights(weights[0]))
        done |= token == EOS_ID
        if done.all():
            break
        if done.sum() >= COMPACT * len(done):
            kept = (~done).nonzero().squeeze(1)
            state, memory = model.select_state(state, kept), model.select_memory(memory, kept)
            token, done = token[kept], done[kept]
            rows.keep(kept)
    return _hypotheses(torch.stack(tokens), torch.stack(scores), attention, src_len)


@torch.no_grad()
def ranked_beams(
    model: Seq2Seq,
    src: torch.Tensor,
    src_len: torch.Tensor,
    max_len: int,
    beam_size: int,
    alpha: float = 0.0,
    n_best: int = 1,
) -> list[list[Hypothesis]]:
    """Keep the `beam_size` best partial translations of each sentence at every step; the
    `n_best` best final beams of each sentence, best first by score / length penalty.

    Finished beams stay in the beam with a constant score (their only continuation is
    <pad> at no cost), so a long unfinished beam never pushes out a better finished one.
    """
    batch, k = src.shape[1], beam_size
    state, memory = model.encode(src, src_len)
    device = src.device
    repeat = torch.arange(batch, device=device).repeat_interleave(k)
    state, memory = model.select_state(state, repeat), model.select_memory(memory, repeat)
    scores = torch.full((batch, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start as the same <sos>: expand only one of them
    token = torch.full((batch * k,), SOS_ID, device=device)
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    rows = LiveRows(batch * k, device)
    history: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # token, origin, gain
    attention = []
    for _ in range(max_len):
        features, state, weights = model.decode(token.unsqueeze(0), state, memory)
        columns = torch.arange(len(token), device=device)
        log_probs = never_emitted(model.project(features[0], memory, columns).log_softmax(-1))
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD_ID] = 0.0
        vocab, sentences = log_probs.shape[1], len(scores)
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(sentences, k * vocab)
        scores, flat = candidates.topk(k, dim=1)
        first_beams = torch.arange(sentences, device=device).unsqueeze(1) * k
        origin = (first_beams + flat // vocab).reshape(-1)
        token = (flat % vocab).reshape(-1)
        gain = log_probs[origin, token]
        history.append((rows.tokens(token), rows.origins(origin), rows.values(gain)))
        if weights is not None:
            attention.append(rows.weights(weights[0][:, origin]))
        state = model.select_state(state, origin)
        finished = finished[origin] | (token == EOS_ID)
        if finished.all():
            break
        done = finished.reshape(sentences, k).all(1)
        if done.sum() >= COMPACT * sentences:
            kept = (~done).repeat_interleave(k).nonzero().squeeze(1)
            state, memory = model.select_state(state, kept), model.select_memory(memory, kept)
            token, finished, scores = token[kept], finished[kept], scores[~done]
            rows.keep(kept)
    # Follow the back-pointers from each final beam to its first step.
    row, walked = torch.arange(batch * k, device=device), []
    for step in reversed(range(len(history))):
        token_t, origin_t, gain_t = history[step]
        walked.append((token_t[row], gain_t[row], attention[step][:, row] if attention else None))
        row = origin_t[row]
    walked.reverse()
    tokens = torch.stack([t for t, _, _ in walked])
    gains = torch.stack([g for _, g, _ in walked])
    traced = [a for _, _, a in walked if a is not None]
    finals = _hypotheses(tokens, gains, traced, src_len.repeat_interleave(k))
    lengths = torch.tensor([len(h.tokens) + 1 for h in finals], dtype=torch.float)
    ranked = torch.tensor([h.score for h in finals]) / length_penalty(lengths, alpha)
    order = ranked.reshape(batch, k).argsort(dim=1, descending=True, stable=True)[:, :n_best]
    return [[finals[i * k + int(b)] for b in beams] for i, beams in enumerate(order)]


def source_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Positions of the sources in batches of `batch_size`, by length: little padding."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def translate_corpus(
    model: Seq2Seq,
    sources: Sequence[np.ndarray],
    settings: SearchSettings,
    on_batch: Callable[[int], object] | None = None,
) -> list[list[Hypothesis]]:
    """The `settings.n_best` best hypotheses for every source (framed ids, as the model reads
    them), in their order, best first; beam 1 is greedy. `on_batch` hears how many sentences
    each batch finished."""
    beam_size, max_len = settings.beam_size, settings.max_len
    model.eval()
    device = next(model.parameters()).device
    out: list[list[Hypothesis]] = [[] for _ in range(len(sources))]
    lengths = np.array([len(s) for s in sources], dtype=np.int64)
    for index in source_batches(lengths, settings.batch_size):
        index = index[np.argsort(-lengths[index], kind="stable")]  # longest first: packing
        src = pad([sources[i] for i in index]).to(device)
        src_len = torch.from_numpy(lengths[index])
        if beam_size == 1:
            found = [[h] for h in greedy_search(model, src, src_len, max_len)]
        else:
            found = ranked_beams(
                model, src, src_len, max_len, beam_size, settings.length_penalty, settings.n_best
            )
        for position, hypotheses in zip(index, found, strict=True):
            out[int(position)] = hypotheses
        if on_batch is not None:
            on_batch(len(index))
    return out
