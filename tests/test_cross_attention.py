"""Every layer's and head's attention, from the model's interface on a teacher-forced pass: its
last layer's mean over heads is what the search itself returns."""

from __future__ import annotations

import pytest
import torch

from nmt import SOS_ID
from nmt.cross_attention import attention_maps, output_steps
from nmt.search import SearchSettings
from nmt.translator import Translator
from tests.conftest import GERMAN

LINES = [*GERMAN, "ein hund im schnee"]


@pytest.mark.parametrize(("beam", "max_len"), [(1, 20), (3, 20), (3, 2)])
def test_the_last_layers_mean_over_heads_is_the_searchs_attention(workdir, beam, max_len):
    translator = Translator.load(workdir / "models/transformer")
    settings = SearchSettings(beam, 0.6, max_len, 128, n_best=beam)
    for line, n_best in zip(LINES, translator.translate(LINES, settings), strict=True):
        for hypothesis in n_best:
            maps = attention_maps(translator, line, hypothesis, max_len)
            assert maps.layers.shape == (
                len(translator.model.decoder),
                translator.model.heads,
                *hypothesis.attention.shape,
            )
            torch.testing.assert_close(maps.layers[-1].mean(0), hypothesis.attention)
            assert maps.target == translator.output_positions(hypothesis)
            assert maps.source == translator.source_positions(line)
            rows = maps.layers.sum(-1)
            torch.testing.assert_close(rows, torch.ones_like(rows))


def test_the_maps_are_the_models_own_weights(workdir):
    """What the model's `attention_weights` gives for the hypothesis, teacher-forced, as it
    is: no second computation of the weights."""
    translator = Translator.load(workdir / "models/transformer")
    hypothesis = translator.translate(GERMAN[:1], SearchSettings(1, 0.0, 20, 1))[0][0]
    src, src_len = translator.source_tensor(GERMAN[0])
    inputs = torch.tensor([SOS_ID, *hypothesis.tokens][: output_steps(hypothesis, 20)])
    want = translator.model.attention_weights(src, src_len, inputs.unsqueeze(1))
    assert torch.equal(attention_maps(translator, GERMAN[0], hypothesis, 20).layers, want)


def test_the_heads_differ(workdir):
    """Each head's own weights, not their mean copied to every head."""
    translator = Translator.load(workdir / "models/transformer")
    hypothesis = translator.translate(GERMAN[:1], SearchSettings(1, 0.0, 20, 1))[0][0]
    layers = attention_maps(translator, GERMAN[0], hypothesis, 20).layers
    assert not torch.allclose(layers[:, 0], layers[:, 1])
    assert not torch.allclose(layers[0], layers[1])


def test_an_rnns_attention_is_one_layer_of_one_head_and_an_lstm_has_none(workdir):
    settings = SearchSettings(2, 0.0, 6, 128, n_best=2)
    attention = Translator.load(workdir / "models/attention")
    hypothesis = attention.translate(GERMAN[:1], settings)[0][1]
    maps = attention_maps(attention, GERMAN[0], hypothesis, 6)
    torch.testing.assert_close(maps.layers, hypothesis.attention[None, None])
    lstm = Translator.load(workdir / "models/lstm")
    assert attention_maps(lstm, GERMAN[0], lstm.translate(GERMAN[:1], settings)[0][0], 6) is None


def test_output_steps_count_the_eos_unless_the_search_stopped_at_max_len(workdir):
    translator = Translator.load(workdir / "models/attention")
    for max_len in (1, 3, 30):
        settings = SearchSettings(1, 0.0, max_len, 128)
        for n_best in translator.translate(LINES, settings):
            assert output_steps(n_best[0], max_len) == len(n_best[0].attention)
