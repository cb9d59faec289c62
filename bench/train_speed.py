"""Training speed of our step against the seed's plain loop (`bench/seed_loop.py`), interleaved.

For each architecture three steps start from the same weights and train on the same batches
(the first batches of epoch 0, same teacher-forcing draws): the seed's loop, ours with torch's
dropout masks, and ours as it trains (masks from nmt.dropout). On a CPU with native bfloat16
(`avx512_bf16` or `amx_bf16`) two more: ours as `train.amp: true` trains (bfloat16 autocast,
fp32 weights), and the model wholly in bfloat16 (weights, gradients, optimizer: not a way to
train, since its updates round away, but the bound of any bfloat16 scheme that casts weights
once per step). Each batch is timed for all, in a rotating order, so machine noise hits them
alike. Reported: target tokens per second of each, our speedup over the seed, the
part of it the cheap masks give, bfloat16's over fp32 (autocast, and the bound), and model
FLOP utilisation (the FLOPs our step needs per batch, counted by torch, over time and a
measured fp32 matmul peak). The CPU model and its flags are printed with the numbers.

A profiled pass of our step gives the share of its time spent inside matmul and fused-RNN
kernels, and from it the kernel-bound speedup: the ratio we would reach if everything else
(elementwise ops, copies, dropout masks, the optimizer, Python) took no time. No exact
change to our step can go past it without making those kernels themselves cheaper.

    python bench/train_speed.py [--batches 20] [--archs lstm gru attention]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from seed_loop import ARCHS, reference_loss
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from nmt import dropout
from nmt.batching import Batch, ParallelData
from nmt.config import load_params
from nmt.io import write_json
from nmt.loss import sequence_loss
from nmt.models import build_model, model_params
from nmt.paths import IDS, VOCAB
from nmt.runtime import NATIVE_BF16, autocast, cpu_info, describe
from nmt.seq2seq import Seq2Seq
from nmt.training import make_optimizer, optimizer_step, seed_everything
from nmt.vocab import load_vocab_pair

# Self time in these ops is matmul or fused-RNN work; everything else is overhead around it.
KERNELS = frozenset(
    (
        "aten::mm",
        "aten::addmm",
        "aten::bmm",
        "aten::mkldnn_rnn_layer",
        "aten::mkldnn_rnn_layer_backward",
    )
)

MaskSource = Callable[[], contextlib.AbstractContextManager[None]]
LossFn = Callable[[Seq2Seq, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 matmul FLOP/s of this machine, over a few repeats."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def train_step(
    model: Seq2Seq,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    batch: Batch,
    tf: torch.Tensor,
    clip: float,
) -> None:
    optimizer_step(model, optimizer, loss_fn(model, batch.src, batch.src_len, batch.trg, tf), clip)


def in_bf16(loss_fn: LossFn) -> LossFn:
    """The loss under bfloat16 autocast, as `train.amp` trains; backward runs outside it."""

    def loss(*args: torch.Tensor) -> torch.Tensor:
        with autocast(torch.device("cpu"), True):
            return loss_fn(*args)

    return loss


def bench_arch(arch: str, n_batches: int, warmup: int, bf16: bool) -> dict[str, float]:
    params = load_params()
    arch_params, train = model_params(params, arch), params.train_params(arch)
    vocab = params.vocab_of(arch)
    vocabs = load_vocab_pair(VOCAB / vocab, params.data.src_lang, params.data.trg_lang)
    sizes = [len(v) for v in vocabs]
    data = ParallelData.load(IDS / vocab, "train", arch_params.reverse_src)
    groups = data.batch_indices(params.batch.size, params.batch.pool_factor, params.seed, 0)
    seed_everything(params.seed)
    ours = build_model(arch, arch_params, *sizes)
    seed_run, torch_masked = copy.deepcopy(ours), copy.deepcopy(ours)
    contenders: dict[str, tuple[Seq2Seq, torch.optim.Optimizer, LossFn, MaskSource]] = {
        "reference": (
            seed_run,
            torch.optim.Adam(seed_run.parameters(), lr=train.lr),
            reference_loss,
            dropout.torch_masks,
        ),
        "ours_torch_masks": (
            torch_masked,
            make_optimizer(torch_masked, train),
            sequence_loss,
            dropout.torch_masks,
        ),
        "ours": (ours, make_optimizer(ours, train), sequence_loss, contextlib.nullcontext),
    }
    if bf16:  # elsewhere bfloat16 is emulated: slower, and nothing to learn
        halved, bound = copy.deepcopy(ours), copy.deepcopy(ours).to(torch.bfloat16)
        contenders["ours_bf16"] = (
            halved,
            make_optimizer(halved, train),
            in_bf16(sequence_loss),
            contextlib.nullcontext,
        )
        contenders["bf16_bound"] = (
            bound,
            make_optimizer(bound, train),
            sequence_loss,
            contextlib.nullcontext,
        )
    if arch not in ARCHS:  # the seed has no Transformer
        del contenders["reference"]
    seconds = dict.fromkeys(contenders, 0.0)
    tokens = 0
    forcing = torch.Generator().manual_seed(params.seed)

    def draw_forcing(batch: Batch) -> torch.Tensor:
        return torch.rand(batch.trg.shape[0], generator=forcing) < train.teacher_forcing

    def train_ours(index: np.ndarray) -> Batch:
        batch = data.collate(index)
        train_step(*contenders["ours"][:3], batch, draw_forcing(batch), train.clip)
        return batch

    for number, index in enumerate(groups[: warmup + n_batches]):
        batch = data.collate(index)
        tf = draw_forcing(batch)
        names = list(contenders)
        names = names[number % len(names) :] + names[: number % len(names)]
        for name in names:
            *step, masks = contenders[name]
            start = time.perf_counter()
            with masks():
                train_step(*step, batch, tf, train.clip)
            if number >= warmup:
                seconds[name] += time.perf_counter() - start
        if number >= warmup:
            tokens += batch.n_trg_tokens
    # oneDNN's LSTM kernel hides its matmuls from the counter; the native kernel's are counted.
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        counted = train_ours(groups[0])
    flops_per_token = counter.get_total_flops() / counted.n_trg_tokens
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        for index in groups[warmup : warmup + min(n_batches, 5)]:
            train_ours(index)
    ops = profiled.key_averages()
    kernel_share = sum(op.self_cpu_time_total for op in ops if op.key in KERNELS) / sum(
        op.self_cpu_time_total for op in ops
    )
    speedup = seconds.get("reference", math.nan) / seconds["ours"]
    return {
        "batches": n_batches,
        "target_tokens": tokens,
        **{  # no reference for the Transformer: NaN
            f"{name}_tokens_per_second": tokens / seconds.get(name, math.nan)
            for name in ("reference", "ours_torch_masks", "ours", "ours_bf16", "bf16_bound")
        },
        "speedup": speedup,
        "cheap_masks_speedup": seconds["ours_torch_masks"] / seconds["ours"],
        "bf16_speedup": seconds["ours"] / seconds.get("ours_bf16", math.nan),
        "bf16_bound_speedup": seconds["ours"] / seconds.get("bf16_bound", math.nan),
        "flops_per_target_token": flops_per_token,
        "ours_kernel_share": kernel_share,
        "kernel_bound_speedup": speedup / kernel_share,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = (*ARCHS, "transformer")
    parser.add_argument("--archs", nargs="+", choices=every, default=list(every))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/train_speed.json"))
    args = parser.parse_args()
    peak = matmul_peak()
    machine = describe()
    bf16 = bool(cpu_info()[1] & NATIVE_BF16)  # elsewhere bfloat16 is emulated, slower
    results: dict[str, dict[str, float]] = {}
    print(f"{machine['cpu']} ({' '.join(machine['flags'])}), {machine['torch_threads']} threads")
    print(f"fp32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(
        f"{'arch':<10} {'reference tok/s':>16} {'torch masks':>12} {'ours tok/s':>11} "
        f"{'speedup':>8} {'masks':>6} {'MFU ref':>8} {'MFU ours':>9} {'kernels':>8} {'bound':>6}"
        f" {'bf16 tok/s':>11} {'bf16':>6} {'bound':>6}"
    )
    for arch in args.archs:
        r = bench_arch(arch, args.batches, args.warmup, bf16)
        for name in ("reference", "ours"):
            r[f"{name}_mfu"] = r["flops_per_target_token"] * r[f"{name}_tokens_per_second"] / peak
        results[arch] = r
        print(
            f"{arch:<10} {r['reference_tokens_per_second']:>16.0f} "
            f"{r['ours_torch_masks_tokens_per_second']:>12.0f} "
            f"{r['ours_tokens_per_second']:>11.0f} {r['speedup']:>7.2f}x "
            f"{r['cheap_masks_speedup']:>5.2f}x "
            f"{r['reference_mfu']:>8.1%} {r['ours_mfu']:>9.1%} "
            f"{r['ours_kernel_share']:>8.0%} {r['kernel_bound_speedup']:>5.2f}x "
            f"{r['ours_bf16_tokens_per_second']:>11.0f} {r['bf16_speedup']:>5.2f}x "
            f"{r['bf16_bound_speedup']:>5.2f}x"
        )
    write_json(
        args.out,
        {
            "matmul_peak_flops": peak,
            **machine,
            "archs": results,
        },
    )


if __name__ == "__main__":
    main()
