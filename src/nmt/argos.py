"""The exported Transformer as an Argos Translate package, the model format that Argos Translate
and LibreTranslate install (`argostranslate.package.install_from_path`).

A package is a zip (.argosmodel) of one folder:

    metadata.json        the language pair and names, the package and format versions
    model/               the CTranslate2 model, as `nmt.export` writes it
    sentencepiece.model  the one tokenizer of both sides
    spacy/               a blank spaCy pipeline of the source language: Argos splits a text
                         into sentences with it, offline, when ARGOS_CHUNK_TYPE=SPACY (by
                         default it downloads its MiniSBD model for the language once)

Argos tokenizes with the SentencePiece model as it is, so only a joint vocabulary that keeps
case can be packaged; it decodes with its own search (beam ARGOS_BEAM_SIZE, default 4; length
penalty 0.2; a target <unk> replaced by a source token), not the search of decoding.json.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import spacy

from nmt import NMTError
from nmt.export import PACKAGE_CONFIG
from nmt.io import atomic_path
from nmt.languages import language_name
from nmt.package import PackageConfig, packaged_vocabs
from nmt.vocab import PieceTokenizer

SUFFIX = ".argosmodel"
MODEL_FILES = ("model.bin", "config.json", "shared_vocabulary.json")  # CTranslate2's
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip's dates: the same bytes for the same model


class NoArgosPackage(NMTError):
    """The model's vocabulary is one Argos Translate cannot tokenize with."""


def argos_name(config: PackageConfig) -> str:
    """The package's file name, and its folder's inside the zip: `nmt-de_en`."""
    return "nmt-{}_{}".format(*config.langs)


def argos_tokenizer(export: Path, config: PackageConfig) -> Path:
    """The SentencePiece model Argos can tokenize both sides with; `NoArgosPackage` where
    there is none."""
    src, trg = packaged_vocabs(export, config)
    if not isinstance(src.tokenizer, PieceTokenizer) or not isinstance(
        trg.tokenizer, PieceTokenizer
    ):
        raise NoArgosPackage(
            f"{export}: an Argos Translate package needs a SentencePiece vocabulary, this model "
            f"reads {config.vocab_kind} (train the Transformer on `subwords`)"
        )
    if src.tokenizer.lowercase:
        raise NoArgosPackage(
            f"{export}: Argos Translate does not lowercase what it translates; vocabulary "
            f"{config.vocab} does (lowercase: false)"
        )
    if src.tokenizer.model.read_bytes() != trg.tokenizer.model.read_bytes():
        raise NoArgosPackage(
            f"{export}: an Argos Translate package has one SentencePiece model for both "
            f"languages; vocabulary {config.vocab} has one each (joint: true)"
        )
    return src.tokenizer.model


def write_argos_package(export: Path, folder: Path) -> Path:
    """Write the CTranslate2 export in `export` as an Argos Translate package in `folder`
    (`nmt-de_en.argosmodel`); its path."""
    config = PackageConfig.read(export, PACKAGE_CONFIG)
    tokenizer = argos_tokenizer(export, config)
    src, trg = config.langs
    metadata = {
        "package_version": "1.0",
        "argos_version": "1.11",  # the format read here: argostranslate 1.11's Package
        "type": "translate",
        "from_code": src,
        "from_name": language_name(src),
        "to_code": trg,
        "to_name": language_name(trg),
        "links": [],
    }
    files: dict[str, bytes] = {
        "metadata.json": json.dumps(metadata, indent=2).encode() + b"\n",
        "sentencepiece.model": tokenizer.read_bytes(),
    }
    for name in MODEL_FILES:
        files[f"model/{name}"] = (export / name).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        spacy.blank(src).to_disk(tmp)
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                files[f"spacy/{path.relative_to(tmp).as_posix()}"] = path.read_bytes()
    inside = argos_name(config)
    out = folder / f"{inside}{SUFFIX}"
    with atomic_path(out) as tmp_out, zipfile.ZipFile(tmp_out, "w") as archive:
        for name, data in sorted(files.items()):
            entry = zipfile.ZipInfo(f"{inside}/{name}", FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return out
