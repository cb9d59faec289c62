"""The CTranslate2 export is the same network: the same log-probabilities, post-norm and
pre-norm (the same translations of a trained model: tests/test_decoding.py)."""

from __future__ import annotations

import ctranslate2
import pytest
import torch

from nmt import SPECIALS
from nmt.export import SpecConverter, ctranslate2_spec
from nmt.models import architecture, build_model
from tests.test_decoding import sources, teacher_forced_score

SRC = [*SPECIALS, *(f"s{i}" for i in range(len(SPECIALS), 20))]
TRG = [*SPECIALS, *(f"t{i}" for i in range(len(SPECIALS), 15))]


@pytest.fixture(params=[False, True], ids=["post-norm", "pre-norm"])
def exported(request, tmp_path) -> tuple[torch.nn.Module, ctranslate2.Translator]:
    """A tiny Transformer with large random weights (varied, peaked predictions) and its
    export."""
    params = architecture("transformer").Params(
        emb_dim=12, hid_dim=12, heads=2, ff_dim=24, dropout=0.0, norm_first=request.param
    )
    torch.manual_seed(0)
    model = build_model("transformer", params, len(SRC), len(TRG))
    for param in model.parameters():
        torch.nn.init.normal_(param, std=0.5)
    SpecConverter(ctranslate2_spec(model, SRC, TRG)).convert(str(tmp_path / "ct2"))
    return model.eval(), ctranslate2.Translator(str(tmp_path / "ct2"), "cpu")


def source_tokens(src: torch.Tensor, src_len: torch.Tensor) -> list[list[str]]:
    """Each column's tokens without <sos> and <eos>: CTranslate2 adds them."""
    return [[SRC[i] for i in src[1 : n - 1, c].tolist()] for c, n in enumerate(src_len.tolist())]


def test_same_log_probabilities(exported):
    model, engine = exported
    src, src_len = sources()
    targets = [["t5", "t9", "t4"], ["t7"], [], ["t12", "t12"], ["t6", "t5", "t8", "t4"]]
    scored = engine.score_batch(source_tokens(src, src_len), targets)
    for column, (target, result) in enumerate(zip(targets, scored, strict=True)):
        want = teacher_forced_score(model, src, src_len, column, [TRG.index(t) for t in target])
        assert sum(result.log_probs) == pytest.approx(want, abs=1e-4)
