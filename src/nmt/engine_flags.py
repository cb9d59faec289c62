"""The `--engine` and `--compute-type` options that `translate` and `translate-server` share,
and where the CTranslate2 engine finds a package's export."""

from __future__ import annotations

import argparse
from pathlib import Path

from nmt.paths import EXPORTS


def add_engine_flags(parser: argparse.ArgumentParser, engine_help: str) -> None:
    """Which engine translates a Transformer (ours, or CTranslate2 on the export) and, for
    CTranslate2, at which precision; `engine_help` says what the command does with it."""
    parser.add_argument(
        "--engine", choices=("pytorch", "ctranslate2"), default="pytorch", help=engine_help
    )
    parser.add_argument(
        "--compute-type",
        choices=("float32", "int8"),
        default="float32",
        help="ctranslate2's precision: int8 weights are faster and slightly less exact",
    )


def export_beside(package: Path) -> Path:
    """The export of a model package as the pipeline lays them out: models/<arch> is exported
    to exports/<arch>."""
    return package.parent.parent / EXPORTS / package.name
