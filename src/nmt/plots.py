"""Attention heatmaps: which source words each output word was translated from."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt
import torch

from nmt.io import atomic_path


def plot_attention(source: list[str], output: list[str], weights: torch.Tensor, path: Path) -> None:
    """Save a heatmap of `weights` [len(output), len(source)] as a PNG, written atomically."""
    if tuple(weights.shape) != (len(output), len(source)):
        raise ValueError(f"weights {tuple(weights.shape)} for {len(output)} x {len(source)} words")
    figure, axes = plt.subplots(
        figsize=(1.0 + 0.45 * len(source), 1.0 + 0.4 * len(output)), constrained_layout=True
    )
    axes.imshow(weights.numpy(), cmap="bone", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(source)), source, rotation=60, ha="right")
    axes.set_yticks(range(len(output)), output)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
