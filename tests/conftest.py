"""Shared fixtures: the real Multi30k mirror beside the project, tiny synthetic corpora, and
tiny trained-model packages as the pipeline leaves them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from nmt.batching import ParallelData
from nmt.config import load_params

ROOT = Path(__file__).resolve().parents[1]
MULTI30K_CHECKSUMS = ROOT / "src/nmt/multi30k_task1.sha256"
GERMAN = ["ein mann fährt fahrrad .", "zwei hunde spielen im schnee .", "ein kind lacht ."]
ENGLISH = ["a man rides a bike .", "two dogs play in the snow .", "a child laughs ."]


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


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/vocab/words/, models/<arch>/ and exports/transformer/ as the pipeline leaves
    them, tiny (untrained)."""
    import pandas as pd
    import torch

    from nmt.config import WordVocabParams
    from nmt.export import export_ctranslate2
    from nmt.models import architecture, build_model
    from nmt.package import UNMEASURED, Trained, save_model, write_decoding
    from nmt.tokenization import tokenize
    from nmt.vocab import build_words

    root = tmp_path_factory.mktemp("translate")
    tokens = pd.DataFrame({"de": tokenize(GERMAN, "de"), "en": tokenize(ENGLISH, "en")})
    spec = WordVocabParams(kind="words", min_freq=1)
    sizes = tuple(build_words(root / "data/vocab/words", spec, tokens, ("de", "en")).values())
    extra = {
        "attention": {"attn_dim": 8},
        "lstm": {"n_layers": 1, "reverse_src": True},
        "transformer": {"heads": 2, "ff_dim": 16, "max_positions": 20},
    }
    torch.manual_seed(0)  # the same weights whatever ran before in this process
    for arch, own in extra.items():
        params = architecture(arch).Params(emb_dim=8, hid_dim=8, dropout=0.0, **own)
        model = build_model(arch, params, *sizes)
        vocab = root / "data/vocab/words"
        trained = Trained(epoch=1, valid_loss=1.0)
        save_model(root / "models" / arch, model, arch, params, vocab, ("de", "en"), trained)
        write_decoding(root / "models" / arch, UNMEASURED)  # as if evaluated at the defaults
    export_ctranslate2(root / "models/transformer", root / "exports/transformer")
    return root
