"""End to end: the real `dvc repro` in a fresh git + DVC repo, on the real data, tiny models."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from nmt.checkpoint import load_model
from nmt.vocab import load_vocab, vocab_hash

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "batch": {"size": 64},
    "model": {"emb_dim": 8, "hid_dim": 16, "lstm": {"n_layers": 2}, "attention": {"attn_dim": 8}},
    "train": {"epochs": 1, "max_batches": 2},
}


def merge(base: dict, over: dict) -> dict:
    return {
        k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        for k, v in {**base, **over}.items()
    }


def run(project: Path, env: dict, *args: str) -> str:
    result = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> tuple[Path, dict]:
    project = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(ROOT / name, project / name)
    for folder in ("stages", "src"):
        shutil.copytree(
            ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {
        **os.environ,
        "MULTI30K_MIRROR": str(mirror),
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
    }
    run(project, env, "git", "init", "-q")
    run(project, env, "dvc", "init", "-q")
    run(project, env, "git", "add", "-A")
    run(project, env, "git", "commit", "-qm", "tiny project")
    return project, env


def test_repro_builds_everything_then_nothing_then_only_what_changed(project):
    root, env = project
    every = {
        "download",
        "tokenize",
        "vocab",
        "numericalize",
        "train@lstm",
        "train@gru",
        "train@attention",
    }
    assert stages_run(run(root, env, "dvc", "repro")) == every

    data = json.loads((root / "metrics/data.json").read_text())
    assert data["vocab_size"] == {"de": 7853, "en": 5893}
    assert data["splits"]["train"]["pairs"] == 29000
    assert 0 < data["train_padding_ratio"] < 0.2
    hashes = tuple(
        vocab_hash(load_vocab(root / f"data/vocab/{lang}.parquet")) for lang in ("de", "en")
    )
    for arch in ("lstm", "gru", "attention"):
        model, saved = load_model(root / f"models/{arch}.pt", hashes, arch)
        metrics = json.loads((root / f"metrics/train_{arch}.json").read_text())
        assert metrics["parameters"] == model.n_parameters()
        assert metrics["epochs"] == saved["epoch"] == 1
        assert saved["model_params"]["hid_dim"] == 16
        assert torch.isfinite(torch.tensor(metrics["best_valid_loss"]))
        curve = (root / f"dvclive/{arch}/plots/metrics/valid/loss.tsv").read_text().splitlines()
        assert curve[0] == "step\tloss" and len(curve) == 2  # a header and epoch 1

    run(root, env, "git", "add", "-A")
    run(root, env, "git", "commit", "-qm", "tiny results")
    assert stages_run(run(root, env, "dvc", "repro")) == set()

    out = run(root, env, "dvc", "exp", "run", "-S", "model.attention.attn_dim=12")
    assert stages_run(out) == {"train@attention"}

    out = run(root, env, "dvc", "exp", "run", "-S", "vocab.min_freq=3")
    assert stages_run(out) == {
        "vocab",
        "numericalize",
        "train@lstm",
        "train@gru",
        "train@attention",
    }
    assert json.loads((root / "metrics/data.json").read_text())["vocab_size"]["de"] < 7853

    diff = run(root, env, "dvc", "metrics", "diff", "--json")
    assert "metrics/data.json" in json.loads(diff)
