"""Figures: attention heatmaps (which source words each output word was translated from) and
the training curves of every architecture in one image."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

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


def plot_curves(curves: dict[str, Path], path: Path) -> None:
    """Train and validation loss per epoch of each architecture, one panel each, from the
    dvclive folders `curves[arch]` (`plots/metrics/{train,valid}/loss.tsv`); as a PNG."""
    tables = {
        (arch, split): pd.read_csv(folder / "plots/metrics" / split / "loss.tsv", sep="\t")
        for arch, folder in curves.items()
        for split in ("train", "valid")
    }
    figure, panels = plt.subplots(1, 2, figsize=(10, 4), sharey=True, constrained_layout=True)
    for panel, split in zip(panels, ("train", "valid"), strict=True):
        for arch in curves:
            table = tables[arch, split]
            panel.plot(table["step"] + 1, table["loss"], marker=".", label=arch)
        panel.set_title(f"{split} loss")
        panel.set_xlabel("epoch")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
    panels[0].set_ylabel("cross-entropy per target token")
    panels[1].legend()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
