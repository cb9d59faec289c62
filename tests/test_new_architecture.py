"""Adding an architecture is one module in src/nmt/models/ and one section in params.yaml:
shown with a throwaway toy architecture in a copy of the package, nothing else edited."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TOY_MODULE = '''"""A toy: a GRU reads the source; its final state starts a GRU that writes."""

import torch
from pydantic import Field
from torch import nn

from nmt.config import ModelParams
from nmt.rnn import pack
from nmt.seq2seq import Rows, Seq2Seq


class Params(ModelParams):
    layers: int = Field(1, ge=1)


class Toy(Seq2Seq[torch.Tensor, None]):
    def __init__(self, src_vocab: int, trg_vocab: int, p: Params):
        super().__init__()
        self.src_embedding = nn.Embedding(src_vocab, p.emb_dim)
        self.encoder = nn.GRU(p.emb_dim, p.hid_dim, p.layers)
        self.trg_embedding = nn.Embedding(trg_vocab, p.emb_dim)
        self.decoder = nn.GRU(p.emb_dim, p.hid_dim, p.layers)
        self.out = nn.Linear(p.hid_dim, trg_vocab)

    def encode(self, src, src_len):
        _, state = self.encoder(pack(self.src_embedding(src), src_len))
        return state, None

    def select_state(self, state: torch.Tensor, rows: Rows) -> torch.Tensor:
        return state[:, rows]

    def select_memory(self, memory: None, rows: Rows) -> None:
        return None

    def decode(self, tokens, state, memory):
        features, state = self.decoder(self.trg_embedding(tokens), state)
        return features, state, None


MODEL = Toy
'''

# Runs against the copied package: parse params, build, train, search, and the stages'
# command line, exactly as for the built-in architectures.
USE_IT = """
import json, sys
from pathlib import Path
import torch
from nmt.cli import stage_arch
from nmt.config import load_params
from nmt.decoding import translate_corpus
from nmt.search import SearchSettings
from nmt.models import build_model, model_params
from nmt.loss import evaluate_loss
from nmt.training import Trainer, seed_everything
from tests.conftest import random_pairs

params = load_params()
toy_params = model_params(params, "toy")
train_params = params.train_params("toy")
seed_everything(0)
model = build_model("toy", toy_params, 24, 24)
train, valid = random_pairs(300, vocab=24, seed=1), random_pairs(20, vocab=24, seed=2)
before = evaluate_loss(model, valid, 32)
run_dir = Path(sys.argv[1])
trainer = Trainer(model, train, valid, train_params, params.batch, 0, run_dir, "toy")
summary = trainer.fit()
greedy = [h for h, in translate_corpus(model, valid.src, SearchSettings(1, 0.0, 12, 8))]
beam_one = [h for h, in translate_corpus(model, valid.src, SearchSettings(1, 0.6, 12, 8))]
beam = [h for h, in translate_corpus(model, valid.src, SearchSettings(3, 0.6, 12, 8))]
sys.argv = ["train.py", "toy"]
print(json.dumps({
    "layers": toy_params.layers,
    "hid_dim": toy_params.hid_dim,
    "epochs": train_params.epochs,
    "before": before,
    "after": summary.best_valid_loss,
    "greedy": [h.tokens for h in greedy],
    "beam_one": [h.tokens for h in beam_one],
    "beam": len(beam),
    "stage_arch": stage_arch(None),
}))
"""


def test_a_new_architecture_is_one_module_and_one_params_section(tmp_path):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "src/nmt/models/toy.py").write_text(TOY_MODULE)  # edit 1 of 2
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["archs"]["toy"] = "words"  # edit 2 of 2: the name (and its vocabulary), the section
    params["toy"] = {"model": {"hid_dim": 32, "layers": 2}, "train": {"epochs": 4, "lr": 0.01}}
    params["batch"]["size"] = 32
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'src'}{os.pathsep}{ROOT}"}

    used = subprocess.run(
        [sys.executable, "-c", USE_IT, str(tmp_path / "run")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert used.returncode == 0, used.stderr
    result = json.loads(used.stdout.splitlines()[-1])
    assert (result["layers"], result["hid_dim"], result["epochs"]) == (2, 32, 4)
    assert result["after"] < result["before"] - 0.3  # it learns
    assert result["beam_one"] == result["greedy"] and result["beam"] == 20
    assert result["stage_arch"] == "toy"

    dvc = Path(sys.executable).parent / "dvc"
    subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    listed = subprocess.run(
        [str(dvc), "stage", "list", "--name-only"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert {"train@toy", "evaluate@toy", "heatmaps@toy"} <= set(listed)
