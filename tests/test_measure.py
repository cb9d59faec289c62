"""The pipeline's model on a split: loaded only with the vocabulary the pipeline's ids use."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from nmt import NMTError
from nmt.config import EvaluateParams
from nmt.measure import pipeline_translator
from nmt.settings import EvaluateSettings


def test_a_package_of_other_vocabularies_names_both_fixes(workdir, tmp_path, monkeypatch):
    shutil.copytree(workdir / "models", tmp_path / "models")
    shutil.copytree(workdir / "data/vocab", tmp_path / "data/vocab")
    monkeypatch.chdir(tmp_path)
    settings = EvaluateSettings(
        arch="attention",
        device="cpu",
        vocab="words",
        langs=("de", "en"),
        evaluate=EvaluateParams(),
        threads_key="evaluate.threads",
    )
    assert pipeline_translator(settings).arch == "attention"  # the pipeline's own
    words = tmp_path / "data/vocab/words/en.parquet"
    tokens = pd.read_parquet(words)
    pd.concat([tokens[:4], tokens[4:][::-1]]).to_parquet(words)  # the same words, other ids
    with pytest.raises(NMTError) as refused:
        pipeline_translator(settings)
    message = str(refused.value)
    assert "was trained with other vocabularies than data/vocab/words" in message
    assert "dvc checkout train@attention evaluate@attention" in message
    assert "dvc repro --force train@attention" in message
