"""Figures: attention heatmaps (which source words each output word was translated from) and
the training curves of every architecture in one image. Drawn on matplotlib's `Figure`
objects, not pyplot, so that importing this module changes no one's plotting backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nmt import NMTError
from nmt.io import atomic_path

if TYPE_CHECKING:
    from nmt.search import Hypothesis
    from nmt.translator import Translator


def plot_translation(translator: Translator, line: str, hypothesis: Hypothesis, path: Path) -> None:
    """The heatmap of the attention `translator`'s model paid while it wrote `hypothesis`."""
    if hypothesis.attention is None:
        raise NMTError(f"a {translator.arch!r} model has no attention to show")
    source = translator.source_positions(line)
    plot_attention(source, translator.output_positions(hypothesis), hypothesis.attention, path)


def plot_attention(source: list[str], output: list[str], weights: torch.Tensor, path: Path) -> None:
    """Save a heatmap of `weights` [len(output), len(source)] as a PNG, written atomically."""
    if tuple(weights.shape) != (len(output), len(source)):
        raise ValueError(f"weights {tuple(weights.shape)} for {len(output)} x {len(source)} words")
    figure = Figure(figsize=(1.0 + 0.45 * len(source), 1.0 + 0.4 * len(output)))
    figure.set_layout_engine("constrained")
    axes = figure.subplots()
    axes.imshow(weights.numpy(), cmap="bone", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(source)), source, rotation=60, ha="right")
    axes.set_yticks(range(len(output)), output)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


def plot_curves(curves: dict[str, Path], path: Path) -> None:
    """Train and validation loss per epoch of each architecture, one panel each, from the
    dvclive folders `curves[arch]` (`plots/metrics/{train,valid}/loss.tsv`); as a PNG."""
    tables = {
        (arch, split): pd.read_csv(folder / "plots/metrics" / split / "loss.tsv", sep="\t")
        for arch, folder in curves.items()
        for split in ("train", "valid")
    }
    figure = Figure(figsize=(10, 4))
    figure.set_layout_engine("constrained")
    panels = figure.subplots(1, 2, sharey=True)
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
