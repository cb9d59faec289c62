"""Shared fixtures: the real Multi30k mirror beside the project, and tiny synthetic corpora."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nmt.batching import ParallelData
from nmt.config import load_params

ROOT = Path(__file__).resolve().parents[1]
MULTI30K_CHECKSUMS = ROOT / "src/nmt/multi30k_task1.sha256"


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = Path(os.environ.get("MULTI30K_MIRROR", ROOT.parent / "shared" / "multi30k"))
    if not (path / "train.de.gz").is_file():
        pytest.fail(f"no Multi30k mirror at {path}: set MULTI30K_MIRROR to the shared copy")
    return path.resolve()


@pytest.fixture(scope="session")
def raw_dir(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real train/val files, fetched once from the mirror by the download stage's code."""
    from nmt.download import download, read_checksums

    dest = tmp_path_factory.mktemp("raw")
    download(["train", "val"], ("de", "en"), dest, str(mirror), read_checksums(MULTI30K_CHECKSUMS))
    return dest


@pytest.fixture(scope="session")
def default_params():
    return load_params(ROOT / "params.yaml")


def random_pairs(n: int, vocab: int, seed: int = 0, max_len: int = 12) -> ParallelData:
    """Tiny corpus whose target is a deterministic function of the source: learnable."""
    rng = np.random.default_rng(seed)
    src, trg = [], []
    for _ in range(n):
        words = rng.integers(4, vocab, size=rng.integers(1, max_len))
        src.append(np.array([2, *words, 3]))
        trg.append(np.array([2, *((words * 7) % (vocab - 4) + 4)[::-1], 3]))
    return ParallelData(src, trg)
