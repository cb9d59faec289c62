"""The Transformer as an Argos Translate package: argostranslate itself installs it and
translates as our CTranslate2 engine does with Argos's search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.argos import NoArgosPackage, write_argos_package
from nmt.batching import ParallelData
from nmt.config import BatchParams, SentencePieceParams, TrainParams
from nmt.export import CTranslate2Translator, export_ctranslate2
from nmt.models import architecture, build_model
from nmt.package import UNMEASURED, Trained, save_model, write_decoding
from nmt.search import SearchSettings
from nmt.training import Trainer, seed_everything
from nmt.vocab import build_pieces, load_vocab_pair

# What argostranslate.translate does for one text: beam 4 (ARGOS_BEAM_SIZE), CTranslate2's
# length penalty 0.2, at most 256 tokens (CTranslate2's default)
ARGOS_SEARCH = SearchSettings(beam_size=4, length_penalty=0.2, max_len=256, batch_size=32)

INSTALL_AND_TRANSLATE = """
import json, sys
from argostranslate import package, translate
package.install_from_path(sys.argv[1])
print(json.dumps([translate.translate(line, "de", "en") for line in json.load(sys.stdin)]))
"""


def subword_transformer(root: Path, raw_dir: Path, joint: bool = True, epochs: int = 15) -> Path:
    """A tiny Transformer on a 500-piece vocabulary of the real training split, trained on 300
    of its pairs (15 epochs: enough to write words and end sentences), exported for
    CTranslate2."""
    spec = SentencePieceParams(kind="sentencepiece", vocab_size=500, joint=joint)
    files = {lang: raw_dir / f"train.{lang}" for lang in ("de", "en")}
    sizes = build_pieces(root / "vocab", spec, files, seed=1)
    params = architecture("transformer").Params(
        emb_dim=16,
        hid_dim=16,
        dropout=0.0,
        n_layers=2,
        heads=2,
        ff_dim=32,
        max_positions=256,
        tie_embeddings=True,
        share_embeddings=joint,
    )
    seed_everything(0)
    model = build_model("transformer", params, sizes["de"], sizes["en"])
    src, trg = load_vocab_pair(root / "vocab", "de", "en")
    pairs = {
        lang: (raw_dir / f"train.{lang}").read_text("utf-8").splitlines()[:320] for lang in files
    }
    data = [
        ParallelData(src.encode(pairs["de"][a:b]), trg.encode(pairs["en"][a:b]))
        for a, b in ((0, 300), (300, 320))
    ]
    recipe = TrainParams(epochs=epochs, lr=3e-3, teacher_forcing=1.0)
    Trainer(model, *data, recipe, BatchParams(size=32), 0, root / "run", "tiny").fit()
    trained = Trained(epoch=epochs, valid_loss=1.0)
    save_model(root / "model", model, "transformer", params, root / "vocab", ("de", "en"), trained)
    write_decoding(root / "model", UNMEASURED)
    export_ctranslate2(root / "model", root / "export")
    return root / "export"


@pytest.fixture(scope="module")
def export(raw_dir, tmp_path_factory) -> Path:
    return subword_transformer(tmp_path_factory.mktemp("argos"), raw_dir)


def test_argostranslate_installs_the_package_and_translates_as_our_engine(
    export, raw_dir, tmp_path
):
    package = write_argos_package(export, tmp_path)
    assert package == tmp_path / "nmt-de_en.argosmodel"
    lines = (raw_dir / "val.de").read_text(encoding="utf-8").splitlines()[:6]
    home = tmp_path / "home"
    # Argos's offline sentence splitter: the package's spaCy pipeline (ARGOS_CHUNK_TYPE=SPACY);
    # its multilingual one, which it would download first, is marked as there
    (home / "cache/argos-translate/spacy/senter/model").mkdir(parents=True)
    env = os.environ | {
        **{f"XDG_{kind.upper()}_HOME": str(home / kind) for kind in ("data", "config", "cache")},
        "HOME": str(home),
        "ARGOS_CHUNK_TYPE": "SPACY",
        "ARGOS_COMPUTE_TYPE": "float32",  # its default, auto, is int8 on most CPUs
    }
    done = subprocess.run(
        [sys.executable, "-c", INSTALL_AND_TRANSLATE, str(package)],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    argos = json.loads(done.stdout.splitlines()[-1])
    engine = CTranslate2Translator.load(export)
    ours = [engine.text(best[0]) for best in engine.translate(lines, ARGOS_SEARCH)]
    assert argos == ours
    assert sum(map(len, ours)) > 6 * 3  # words, not empty lines
    assert (home / "data/argos-translate/packages/nmt-de_en/model/model.bin").is_file()


def test_the_same_model_gives_the_same_package_bytes(export, tmp_path):
    first = write_argos_package(export, tmp_path / "first").read_bytes()
    assert first == write_argos_package(export, tmp_path / "again").read_bytes()


def test_a_word_model_or_one_model_per_language_is_refused_in_one_line(workdir, raw_dir, tmp_path):
    words = workdir / "exports/transformer"
    refused = "needs a SentencePiece vocabulary, this model reads words"
    with pytest.raises(NoArgosPackage, match=refused):
        write_argos_package(words, tmp_path)
    apart = subword_transformer(tmp_path / "apart", raw_dir, joint=False, epochs=1)
    refused = r"one SentencePiece model for both .* \(joint: true\)"
    with pytest.raises(NoArgosPackage, match=refused):
        write_argos_package(apart, tmp_path)
    assert not list(tmp_path.glob("*.argosmodel"))
