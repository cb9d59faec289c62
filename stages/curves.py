"""Stage `curves`: the training curves of every architecture in one image, plots/curves.png.
(`dvc plots show` draws the same curves interactively.)"""

from pathlib import Path

from nmt.cli import run_stage
from nmt.config import ARCHS
from nmt.plots import plot_curves


def main() -> None:
    plot_curves({arch: Path("dvclive") / arch for arch in ARCHS}, Path("plots/curves.png"))
    print("curves: plots/curves.png")


if __name__ == "__main__":
    run_stage(main)
