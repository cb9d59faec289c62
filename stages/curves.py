"""Stage `curves`: the training curves of every architecture in one image, plots/curves.png.
(`dvc plots show` draws each architecture's curves interactively.)"""

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.paths import LIVE, PLOTS
from nmt.plots import plot_curves


def main() -> None:
    archs = load_params().archs
    plot_curves({arch: LIVE / arch for arch in archs}, PLOTS / "curves.png")
    print(f"curves: {PLOTS / 'curves.png'}")


if __name__ == "__main__":
    run_stage(main)
