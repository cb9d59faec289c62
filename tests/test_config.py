import json
import runpy
import sys
from pathlib import Path

import pytest
import yaml

from nmt.config import (
    ParamsError,
    TrainParams,
    available_archs,
    fingerprint,
    load_params,
    parse_params,
)
from nmt.models import model_params
from nmt.settings import EvaluateSettings, TrainSettings

ROOT = Path(__file__).resolve().parents[1]


def raw_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_defaults_are_the_seed_models_and_recipe(default_params):
    lstm = model_params(default_params, "lstm")
    assert (lstm.emb_dim, lstm.hid_dim, lstm.n_layers, lstm.dropout, lstm.reverse_src) == (
        256,
        512,
        2,
        0.5,
        True,
    )
    assert not model_params(default_params, "gru").reverse_src
    attention = model_params(default_params, "attention")
    assert (attention.attn_dim, attention.masked, attention.reverse_src) == (512, True, False)
    words = default_params.vocabs["words"]
    assert (words.kind, words.lowercase, words.min_freq) == ("words", True, 2)
    assert default_params.batch.size == 128
    for arch in ("lstm", "gru", "attention"):
        assert default_params.vocab_of(arch) == "words"  # the seed's vocabularies
    for arch in ("lstm", "gru", "attention"):
        train = default_params.train_params(arch)
        assert (train.lr, train.clip, train.teacher_forcing) == (1e-3, 1.0, 0.5)
        assert (train.label_smoothing, train.warmup, train.average) == (0.0, 0, 1)
        assert (train.epochs, train.patience) == (20, 5)  # the seed's 20, stopped early
    assert TrainParams().epochs == 20  # and the seed's count where params.yaml is silent


def test_transformer_defaults_are_the_small_subword_recipe(default_params):
    model = model_params(default_params, "transformer")
    assert (model.n_layers, model.hid_dim, model.heads, model.ff_dim, model.dropout) == (
        4,
        128,
        4,
        256,
        0.3,
    )
    assert model.share_embeddings and model.tie_embeddings
    assert not model.reverse_src and not model.norm_first and model.positions == "learned"
    assert default_params.vocabs[default_params.vocab_of("transformer")].joint
    train = default_params.train_params("transformer")
    assert (train.lr, train.teacher_forcing, train.label_smoothing) == (2e-3, 1.0, 0.1)
    assert (train.schedule, train.warmup, train.epochs, train.average) == ("cosine", 2000, 50, 10)
    assert train.rdrop_alpha == 1  # chosen on val
    decoding = default_params.evaluate_params("transformer")
    assert (decoding.beam_size, decoding.length_penalty) == (10, 1.8)  # tuned on val
    assert default_params.evaluate_params("gru").beam_size == 5  # the shared setting


def test_train_section_of_one_architecture_overrides_only_it():
    raw = raw_params()
    raw["gru"]["train"] = {"lr": 0.01, "epochs": 3}
    params = parse_params(raw)
    assert (params.train_params("gru").lr, params.train_params("gru").epochs) == (0.01, 3)
    assert params.train_params("lstm").lr == 0.001


def test_dvc_yaml_tracks_training_settings_through_the_settings_stage():
    """settings@<arch> tracks every key its architecture may read (the shared sections whole,
    its own sections), and train@, evaluate@ and heatmaps@<arch> track only the file of it that
    they read, so a change to another architecture's section, to decoding, or to a shared key
    the architecture overrides does not retrain it."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    settings, train = stages["settings"], stages["train"]
    assert settings["foreach"] == train["foreach"] == "${archs}"
    tracked = set(settings["do"]["params"])
    own = {"${key}.model", "${key}.train", "${key}.evaluate"}
    assert {
        "seed",
        "device",
        "batch",
        "model",
        "train",
        "evaluate",
        "data.max_len",
    } | own <= tracked
    assert "${key}" not in tracked
    assert "params" not in train["do"] and "data/settings/${key}/train.json" in train["do"]["deps"]
    for name in ("evaluate", "heatmaps"):
        assert "params" not in stages[name]["do"]
        assert "data/settings/${key}/evaluate.json" in stages[name]["do"]["deps"]
    for arch in raw_params()["archs"]:  # DVC tracks a section only where params.yaml has it
        assert {"model", "train", "evaluate"} <= set(raw_params()[arch]), arch


def test_settings_change_only_where_an_architecture_reads_the_change(tmp_path, monkeypatch):
    """The settings stage's files: what the train and evaluate stages read, resolved; a shared
    key that the Transformer overrides leaves its file byte for byte as it was, and changes the
    GRU's; a decoding key changes the evaluate files alone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["settings.py", "transformer"])

    def written(raw: dict, name: str = "train") -> dict[str, bytes]:
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        files = {}
        for arch in ("gru", "transformer"):
            sys.argv[1] = arch
            runpy.run_path(str(ROOT / "stages/settings.py"), run_name="__main__")
            files[arch] = (tmp_path / f"data/settings/{arch}/{name}.json").read_bytes()
        return files

    raw = raw_params()
    before = written(raw)
    params = parse_params(raw)
    resolved = json.loads(before["transformer"])
    assert resolved["model"] == model_params(params, "transformer").model_dump()
    assert resolved["train"] == params.train_params("transformer").model_dump(mode="json")
    raw["model"]["hid_dim"] = 1024
    after = written(raw)
    assert after["transformer"] == before["transformer"] and after["gru"] != before["gru"]
    assert TrainSettings.read("gru").model.hid_dim == 1024  # what train reads: typed
    decoding = written(raw, "evaluate")
    raw["evaluate"]["beam_size"] = 3
    assert written(raw) == after and written(raw, "evaluate")["gru"] != decoding["gru"]
    assert EvaluateSettings.read("gru").evaluate.beam_size == 3


def test_evaluate_section_of_one_architecture_overrides_only_it():
    raw = raw_params()
    raw["gru"]["evaluate"] = {"beam_size": 3, "test_sets": ["val"]}
    params = parse_params(raw)
    assert (params.evaluate_params("gru").beam_size, params.evaluate_params("gru").test_sets) == (
        3,
        ("val",),
    )
    assert params.evaluate_params("lstm") == params.evaluate
    raw["gru"]["evaluate"] = {"test_sets": ["dev"]}
    with pytest.raises(ParamsError, match=r"each of gru\.evaluate\.test_sets must be one of data"):
        parse_params(raw)
    raw["gru"]["evaluate"] = {"beam_size": 0}
    with pytest.raises(ParamsError, match=r"gru\.evaluate\.beam_size must be >= 1, got 0"):
        parse_params(raw)


def test_arch_section_overrides_shared_value():
    raw = raw_params()
    raw["gru"]["model"]["hid_dim"] = 64
    params = parse_params(raw)
    assert model_params(params, "gru").hid_dim == 64
    assert model_params(params, "lstm").hid_dim == 512


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["model"].update(hid_dim=0), "model.hid_dim must be >= 1, got 0"),
        (lambda p: p["model"].update(dropout=1.0), "model.dropout must be in [0, 1), got 1.0"),
        (
            lambda p: p["train"].update(teacher_forcing=1.5),
            "train.teacher_forcing must be in [0, 1]",
        ),
        (lambda p: p["batch"].update(size=0), "batch.size must be >= 1, got 0"),
        (lambda p: p["train"].update(betas=[0.9, 1.0]), "train.betas.1 must be in [0, 1)"),
        (
            lambda p: p["vocabs"]["words"].update(min_freq=0),
            "vocabs.words.min_freq must be >= 1, got 0",
        ),
        (
            lambda p: p["vocabs"]["subwords"].update(character_coverage=1.5),
            "vocabs.subwords.character_coverage must be <= 1, got 1.5",
        ),
        (
            lambda p: p["vocabs"]["subwords"].update(character_coverage=0),
            "vocabs.subwords.character_coverage must be > 0, got 0",
        ),
        (
            lambda p: p["vocabs"]["subwords"].update(model_type="wordpiece"),
            "vocabs.subwords.model_type must be one of bpe, unigram, got 'wordpiece'",
        ),
        (
            lambda p: p["vocabs"]["subwords"].update(vocab_size=4),
            "vocabs.subwords.vocab_size must be >= 8, got 4",
        ),
        (
            lambda p: p["vocabs"]["words"].update(kind="bpe"),
            "vocabs.words.kind must be one of words, sentencepiece, got 'bpe'",
        ),
        (
            lambda p: p["vocabs"]["words"].update(vocab_size=8000),
            "unknown key 'vocabs.words.vocab_size' (allowed: kind, lowercase, min_freq)",
        ),
        (
            lambda p: p["archs"].update(gru="bpe"),
            "archs.gru must be one of vocabs (words, subwords), got 'bpe'",
        ),
        (lambda p: p["train"].update(epochs="ten"), "train.epochs must be of type int, got 'ten'"),
        (lambda p: p["train"].update(lerning_rate=1), "unknown key 'train.lerning_rate'"),
        (
            lambda p: p.update(transformerx={"model": {"n_layers": 1}}),
            "unknown key 'transformerx' (allowed: seed, archs, data, vocabs, batch, model, "
            "train, evaluate, device, or an architecture: attention, gru, lstm, transformer)",
        ),
        (lambda p: p["gru"]["model"].update(n_layers=2), "unknown key 'gru.model.n_layers'"),
        (lambda p: p["gru"].update(train={"heads": 2}), "unknown key 'gru.train.heads'"),
        (lambda p: p["gru"].update(optimizer={}), "unknown key 'gru.optimizer'"),
        (lambda p: p["train"].update(rnn={}), "unknown key 'train.rnn'"),
        (
            lambda p: p["transformer"]["train"].update(schedule="linear"),
            "transformer.train.schedule must be one of constant, inverse_sqrt, cosine, "
            "got 'linear'",
        ),
        (
            lambda p: p["transformer"]["train"].update(label_smoothing=-0.1),
            "transformer.train.label_smoothing must be in [0, 1], got -0.1",
        ),
        (lambda p: p["train"].update(average=0), "train.average must be >= 1, got 0"),
        (
            lambda p: p["transformer"]["model"].update(heads=3),
            "transformer.model.hid_dim must be a multiple of heads (3), got 128",
        ),
        (
            lambda p: p["transformer"]["model"].update(emb_dim=64),
            "transformer.model.emb_dim must be equal to hid_dim (128), got 64",
        ),
        (
            lambda p: p["transformer"]["model"].update(positions="rotary"),
            "transformer.model.positions must be one of learned, sinusoidal, got 'rotary'",
        ),
        (  # a shared key set in an architecture's section is named there
            lambda p: p["gru"]["model"].update(dropout=1.5),
            "gru.model.dropout must be in [0, 1), got 1.5",
        ),
        (lambda p: p["archs"].update(rnn="words"), "archs names 'rnn', which is not an arch"),
        (
            lambda p: p.pop("gru"),
            "archs names 'gru' but there is no 'gru' section (add `gru: {}`)",
        ),
        (lambda p: p.update(archs={}), "archs must be a non-empty mapping, got {}"),
        (lambda p: p.update(archs=["lstm"]), "archs must be a mapping, got ['lstm']"),
        (lambda p: p.pop("data"), "missing key 'data'"),
        (
            lambda p: p["data"].update(file_name="{split}.gz"),
            "data.file_name must be a pattern with {split} and {lang}, got '{split}.gz'",
        ),
        (lambda p: p["train"].update(processes=0), "train.processes must be >= 1, got 0"),
        (lambda p: p["train"].update(amp="yes"), "train.amp must be of type bool, got 'yes'"),
        (lambda p: p.update(device=0), "device must be of type str, got 0"),
        (lambda p: p["train"].update(threads=0), "train.threads must be >= 1, got 0"),
        (
            lambda p: p["gru"]["evaluate"].update(threads=0),
            "gru.evaluate.threads must be >= 1, got 0",
        ),
        (
            lambda p: p["transformer"]["train"].update(rdrop_alpha=-1),
            "transformer.train.rdrop_alpha must be >= 0, got -1",
        ),
        (
            lambda p: p["transformer"]["train"].update(subword_sampling=1.0),
            "transformer.train.subword_sampling must be in [0, 1), got 1.0",
        ),
        (
            lambda p: p["gru"]["train"].update(subword_sampling=0.1),
            "gru.train.subword_sampling samples SentencePiece segmentations, but archs.gru "
            "reads the words vocabulary 'words': set it to 0",
        ),
        (
            lambda p: p["train"].update(subword_sampling=0.1),
            "params.yaml: train.subword_sampling samples SentencePiece segmentations, but "
            "archs.lstm reads",
        ),
    ],
)
def test_bad_params_name_the_key(edit, message):
    """Whether the top level or an architecture's own model section (checked by the stages of
    that architecture, which import its module) is wrong."""
    raw = raw_params()
    edit(raw)
    with pytest.raises(ParamsError, match=None) as err:
        params = parse_params(raw)
        for arch in params.archs:
            model_params(params, arch)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_architecture_is_named():
    from nmt.models import architecture

    with pytest.raises(
        ParamsError,
        match=r"unknown architecture 'rnn' \(known: attention, gru, lstm, transformer\)",
    ):
        architecture("rnn")
    assert available_archs() == ("attention", "gru", "lstm", "transformer")


def test_missing_and_broken_params_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("seed: [1\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_fingerprint_changes_with_any_setting(default_params):
    train = default_params.train_params("gru")
    base = fingerprint(train, 1)
    assert base == fingerprint(train, 1)
    assert base != fingerprint(train, 2)
