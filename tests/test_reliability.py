"""A user's mistake or an interruption never costs a traceback or a trained model."""

from __future__ import annotations

import os
import pickle
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from safetensors.torch import load_model as load_weights

from nmt import SPECIALS, NMTError
from nmt.config import WordVocabParams
from nmt.download import download, read_checksums
from nmt.ids import write_ids
from nmt.io import atomic_path, save_torch, write_text
from nmt.models import architecture, build_model
from nmt.package import Trained, load_model, save_model
from nmt.resume import RunFiles
from nmt.vocab import build_words
from tests.conftest import MULTI30K_CHECKSUMS, random_pairs

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 24
PARAMS = {
    "seed": 3,
    "data": {
        "url": "https://example.org",
        "src_lang": "de",
        "trg_lang": "en",
        "splits": ["train", "val"],
    },
    "batch": {"size": 16},
    "archs": {"gru": "words", "transformer": "words"},
    "vocabs": {"words": {"kind": "words", "min_freq": 1}},
    "model": {"emb_dim": 16, "hid_dim": 24, "dropout": 0.1},
    "gru": {},
    "transformer": {"model": {"emb_dim": 24}},
    "train": {"epochs": 2},
    "evaluate": {"test_sets": ["val"]},
}


def tiny_project(root: Path, **train: object) -> Path:
    """A project folder as the data stages leave it, on a synthetic corpus."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stages").symlink_to(ROOT / "stages")
    params = {**PARAMS, "train": {**PARAMS["train"], **train}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    words = [f"w{i}" for i in range(len(SPECIALS), VOCAB)]
    tokens = pd.DataFrame({"de": [words], "en": [words]})
    spec = WordVocabParams(kind="words", min_freq=1)
    build_words(root / "data/vocab/words", spec, tokens, ("de", "en"))
    for split, n, seed in (("train", 3000, 1), ("val", 100, 2)):
        data = random_pairs(n, vocab=VOCAB, seed=seed)
        write_ids(root / "data/ids/words", split, [(list(data.src), list(data.trg))])
    return root


def train(root: Path, arch: str = "gru", **kwargs) -> subprocess.Popen:
    """Stage train@<arch> after the settings stage it reads, as `dvc repro` runs them; the
    process is the training's once the settings are written (`exec`), for signals."""
    python = shlex.quote(sys.executable)
    return subprocess.Popen(
        f"{python} stages/settings.py {arch} >/dev/null && exec {python} stages/train.py {arch}",
        shell=True,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_sigterm_mid_epoch_then_rerun_matches_an_uninterrupted_run(tmp_path):
    whole = tiny_project(tmp_path / "whole")
    done = train(whole)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err

    cut = tiny_project(tmp_path / "cut")
    running = train(cut, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in running.stdout:  # printed once epoch 1 is saved: epoch 2 is starting
        if line.startswith("train: epoch 1:"):
            break
    running.send_signal(signal.SIGTERM)
    out, err = running.communicate(timeout=60)
    assert running.returncode == 130, err
    assert "interrupted: files written so far are complete" in err
    assert "Traceback" not in err
    assert not (cut / "models/gru").exists()  # the stage did not finish: no output yet

    resumed = train(cut)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "train: resuming after epoch 1" in out
    for name in ("metrics/train_gru.json", "dvclive/gru/metrics.json"):
        assert (cut / name).read_text() == (whole / name).read_text(), name
    saved = [load_file(p / "models/gru/model.safetensors") for p in (whole, cut)]
    for key, tensor in saved[0].items():
        assert torch.equal(tensor, saved[1][key]), key


def test_a_code_change_retrains_from_scratch_and_unchanged_code_resumes(tmp_path):
    root = tiny_project(tmp_path, epochs=1)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(root / "src")}  # the stage runs this copy

    def run() -> tuple[str, bytes]:
        done = train(root, env=env)
        out, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
        return out, (root / "models/gru/model.safetensors").read_bytes()

    _, first = run()
    out, again = run()
    assert "train: resuming after epoch 1" in out and again == first
    with (root / "src/nmt/models/gru.py").open("a") as module:
        module.write(
            "\n_init = GRUSeq2Seq.__init__\n\n\n"
            "def _halved(self, *args):\n"
            "    _init(self, *args)\n"
            "    for weight in self.parameters():\n"
            "        weight.data.mul_(0.5)\n\n\n"
            "GRUSeq2Seq.__init__ = _halved\n"
        )
    out, changed = run()
    assert "was written by other code (nmt/models/gru.py); starting afresh" in out
    assert "resuming" not in out and changed != first


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model": {"emb_dim": 16, "hid_dim": 24, "dropout": 1.5}},
            "model.dropout must be in [0, 1), got 1.5",
        ),
        ({"train": {"teacher_forcing": 2}}, "train.teacher_forcing must be in [0, 1], got 2"),
        ({"batch": {"size": 0}}, "batch.size must be >= 1, got 0"),
        ({"evaluate": {"beam_size": 0}}, "evaluate.beam_size must be >= 1, got 0"),
        ({"rnn": {}}, "unknown key 'rnn' (allowed: seed, archs,"),
        ({"gru": {"model": {"attn_dim": 8}}}, "unknown key 'gru.model.attn_dim'"),
    ],
)
def test_bad_params_stop_a_stage_with_one_line_and_write_nothing(tmp_path, change, message):
    root = tiny_project(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump({**params, **change}))
    result = train(root)
    _, err = result.communicate(timeout=120)
    assert result.returncode == 1
    assert err.startswith("error: params.yaml: ") and message in err and err.count("\n") == 1
    assert not (root / "checkpoints").exists() and not (root / "models").exists()


def test_missing_data_names_the_stage_to_run(tmp_path):
    root = tiny_project(tmp_path)
    (root / "data/ids/words/val.trg.npy").unlink()
    _, err = train(root).communicate(timeout=120)
    assert err == (
        "error: data/ids/words/val.trg.npy not found: run `dvc repro numericalize@words` first\n"
    )


def test_truncated_download_is_refused_and_nothing_is_left(mirror, tmp_path):
    bad = tmp_path / "mirror"
    shutil.copytree(mirror, bad)
    payload = (bad / "val.de.gz").read_bytes()
    (bad / "val.de.gz").chmod(0o644)
    (bad / "val.de.gz").write_bytes(payload[: len(payload) // 2])
    checksums = read_checksums(MULTI30K_CHECKSUMS)
    with pytest.raises(NMTError, match=r"checksum mismatch for val\.de\.gz"):
        download(["val"], ("de", "en"), tmp_path / "raw", str(bad), checksums)
    assert not (tmp_path / "raw").exists() or list((tmp_path / "raw").iterdir()) == []


def package(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A tiny GRU saved as a model package, with its word vocabulary."""
    tiny = tiny_project(tmp_path / "project")
    params = architecture("gru").Params(emb_dim=8, hid_dim=8, dropout=0.0)
    model = build_model("gru", params, VOCAB, VOCAB)
    folder = tmp_path / "gru"
    trained = Trained(epoch=3, valid_loss=2.5)
    save_model(folder, model, "gru", params, tiny / "data/vocab/words", ("de", "en"), trained)
    return folder, model


def test_a_model_package_loads_alone_and_refuses_what_is_not_its_own(tmp_path):
    folder, model = package(tmp_path)
    shutil.rmtree(tmp_path / "project")  # nothing outside the package is needed
    found = load_model(folder, "gru")
    loaded, (de, en), config = found.model, found.vocabs, found.config
    assert (
        config.trained.epoch == 3
        and config.vocab == "words"
        and not loaded.training
        and len(de) == len(en) == VOCAB
    )
    pairs = zip(model.parameters(), loaded.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "vocab"]
    with pytest.raises(NMTError, match="holds a 'gru' model, not 'lstm'"):
        load_model(folder, "lstm")

    words = folder / "vocab/en.parquet"
    tokens = pd.read_parquet(words)
    pd.concat([tokens[:4], tokens[4:][::-1]]).to_parquet(words)  # the same words, other ids
    with pytest.raises(NMTError, match=r"is not the vocabulary .* was trained with"):
        load_model(folder)
    tokens.to_parquet(words)

    weights = folder / "model.safetensors"
    weights.write_bytes(pickle.dumps({"state_dict": dict(model.state_dict())}))
    with pytest.raises(NMTError, match=r"model.safetensors is not safetensors weights"):
        load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(NMTError, match="is not a model package of this project"):
        load_model(folder)


class Payload:
    """What a tampered checkpoint could carry: unpickling it runs a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_training_checkpoint_with_code_in_it_is_refused_not_run(tmp_path):
    root = tiny_project(tmp_path, epochs=1)
    done = train(root)
    done.communicate(timeout=300)
    assert done.returncode == 0
    marker = tmp_path / "ran"
    last = root / "checkpoints/gru/last.pt"
    state = torch.load(last, weights_only=True)
    torch.save({**state, "history": Payload(marker)}, last)
    rerun = train(root)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 1 and not marker.exists()
    assert err.startswith("error: checkpoints/gru/last.pt holds more than tensors and plain")
    assert err.endswith("delete checkpoints/gru to train afresh\n") and err.count("\n") == 1
    assert "weights_only" not in err  # torch's advice would run the file's code


def test_saved_files_are_byte_identical_for_identical_objects(tmp_path):
    state = build_model("gru", architecture("gru").Params(emb_dim=4, hid_dim=4, dropout=0.0), 9, 9)
    save_torch(tmp_path / "a.pt", state.state_dict())
    save_torch(tmp_path / "b.pt", state.state_dict())
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]


SAVE_TIED = """
import sys, torch
from pathlib import Path
from nmt.package import save_weights
from nmt.models import architecture, build_model
torch.manual_seed(0)
options = dict(emb_dim=8, hid_dim=8, dropout=0.0, heads=2, ff_dim=8)
params = architecture("transformer").Params(**options, share_embeddings=True, tie_embeddings=True)
save_weights(build_model("transformer", params, 20, 20), Path(sys.argv[1]))
"""


def test_tied_weights_save_to_the_same_bytes_in_every_process(tmp_path):
    """One tensor under three names (shared source and target embedding, tied output layer):
    Python's string hashing, other in each process, must not order the file."""
    files = []
    for seed in range(6):
        files.append(tmp_path / f"{seed}.safetensors")
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        subprocess.run([sys.executable, "-c", SAVE_TIED, str(files[-1])], env=env, check=True)
    assert len({f.read_bytes() for f in files}) == 1
    torch.manual_seed(1)
    options = dict(emb_dim=8, hid_dim=8, dropout=0.0, heads=2, ff_dim=8)
    params = architecture("transformer").Params(
        **options, share_embeddings=True, tie_embeddings=True
    )
    model = build_model("transformer", params, 20, 20)
    load_weights(model, str(files[0]))  # as load_model reads it: every name filled, still tied
    assert model.out.weight is model.src_embedding.weight is model.trg_embedding.weight
    torch.manual_seed(0)
    assert torch.equal(model.out.weight, build_model("transformer", params, 20, 20).out.weight)


def test_saved_files_get_the_mode_of_a_plain_new_file(tmp_path):
    umask = os.umask(0o022)
    try:
        save_torch(tmp_path / "atomic.pt", {"weight": torch.zeros(2)})
    finally:
        os.umask(umask)
    assert (tmp_path / "atomic.pt").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("average", [1, 3])
def test_a_damaged_checkpoint_is_one_line_naming_it_and_the_fix(tmp_path, average):
    files = RunFiles(tmp_path / "run", average)
    files.folder.mkdir()
    for epoch in (1, 2, 3):
        files.end_epoch(epoch, {"w": torch.zeros(2)}, best=True)
    damaged = files.best if average == 1 else files.epoch(2)
    damaged.write_bytes(damaged.read_bytes()[:200] if average == 1 else bytes(range(256)))
    with pytest.raises(NMTError) as err:
        files.final_state(3)
    assert str(err.value) == (
        f"{damaged} is damaged or not a checkpoint of this project; delete {files.folder} to "
        "train afresh"
    )


def test_a_raw_pickle_checkpoint_is_refused_without_torch_warnings(tmp_path, recwarn):
    """torch's older format, with code in it: refused in our line alone, never run."""
    files, marker = RunFiles(tmp_path), tmp_path / "ran"
    payload = {"epoch": 1, "history": Payload(marker)}
    torch.save(payload, files.last, _use_new_zipfile_serialization=False)
    with pytest.raises(NMTError, match=r"last\.pt holds more than tensors and plain values"):
        files.read_last()
    assert not marker.exists()
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_outputs_replace_only_regular_files(tmp_path):
    """A folder is refused before the block runs; a symbolic link's target is written and the
    link stays; a FIFO is written to, not replaced."""
    folder = tmp_path / "folder"
    folder.mkdir()
    refused = pytest.raises(NMTError, match=r"cannot write .*folder: it is a folder; name a file")
    with refused, atomic_path(folder):
        raise AssertionError("the block ran")
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("old")
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    write_text(fifo, "through\n")
    assert reader.communicate(timeout=10)[0] == b"through\n"
    assert fifo.is_fifo()
    if os.geteuid() == 0:  # a device node of our own: the null device
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        write_text(device, "gone")
        assert stat.S_ISCHR(device.stat().st_mode)
