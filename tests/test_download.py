import gzip
import hashlib
import shutil
from pathlib import Path

import pytest

from nmt import NMTError
from nmt.download import MIRROR_ENV, download, read_checksums, resolve_source
from tests.conftest import MULTI30K_CHECKSUMS

MULTI30K = read_checksums(MULTI30K_CHECKSUMS)


def test_downloads_verified_decompressed_files(mirror, tmp_path):
    files = download(["val"], ("de", "en"), tmp_path, str(mirror), MULTI30K)
    assert [f.name for f in files] == ["val.de", "val.en"]
    lines = (tmp_path / "val.en").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1014
    assert lines[0] == gzip.decompress((mirror / "val.en.gz").read_bytes()).decode().splitlines()[0]


def test_file_url_mirror(mirror, tmp_path):
    download(["val"], ("en",), tmp_path, mirror.as_uri(), MULTI30K)
    assert (tmp_path / "val.en").stat().st_size > 0


def test_checksums_are_shipped_for_every_split():
    checksums = MULTI30K
    for split in (
        "train",
        "val",
        "test_2016_flickr",
        "test_2017_flickr",
        "test_2017_mscoco",
        "test_2018_flickr",
    ):
        for lang in ("de", "en"):
            assert len(checksums[f"{split}.{lang}.gz"]) == 64


def test_checksum_mismatch_names_the_file_and_writes_nothing(mirror, tmp_path):
    bad = tmp_path / "mirror"
    shutil.copytree(mirror, bad)
    (bad / "val.en.gz").chmod(0o644)
    (bad / "val.en.gz").write_bytes(gzip.compress(b"A tampered sentence.\n"))
    out = tmp_path / "raw"
    with pytest.raises(NMTError, match=r"checksum mismatch for val\.en\.gz"):
        download(["val"], ("de", "en"), out, str(bad), MULTI30K)
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_mirror_file_says_how_to_fix(tmp_path):
    with pytest.raises(NMTError, match=f"has no file val.de.gz; .*{MIRROR_ENV}="):
        download(["val"], ("de",), tmp_path / "raw", str(tmp_path), MULTI30K)


def test_offline_error_says_how_to_set_the_mirror(tmp_path):
    # Nothing listens on port 9 of loopback: the connection is refused at once, as offline.
    with pytest.raises(
        NMTError, match=f"could not fetch http://127.0.0.1:9/val.de.gz .*{MIRROR_ENV}"
    ):
        download(["val"], ("de",), tmp_path / "raw", "http://127.0.0.1:9", MULTI30K)
    assert not (tmp_path / "raw").exists()


def test_unknown_split_is_refused(mirror, tmp_path):
    with pytest.raises(NMTError, match=r"no checksum is known for test_2099\.de\.gz"):
        download(["test_2099"], ("de",), tmp_path, str(mirror), MULTI30K)


def test_mirror_environment_variable_overrides_the_url(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert resolve_source("https://example.org/raw") == "https://example.org/raw"
    monkeypatch.setenv(MIRROR_ENV, "/data/multi30k")
    assert resolve_source("https://example.org/raw") == "/data/multi30k"


def test_no_temporary_files_are_left(mirror, tmp_path):
    download(["val"], ("de", "en"), tmp_path, str(mirror), MULTI30K)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["val.de", "val.en"]


def test_another_corpus_from_a_local_folder(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = {"fr-train.txt": "Bonjour.\n", "it-train.txt": "Ciao.\n"}
    for name, text in texts.items():
        (corpus / name).write_text(text, encoding="utf-8")
    sums = tmp_path / "corpus.sha256"  # what `sha256sum *.txt` prints
    sums.write_text(
        "".join(f"{hashlib.sha256(t.encode()).hexdigest()}  {n}\n" for n, t in texts.items())
    )
    files = download(
        ["train"],
        ("fr", "it"),
        tmp_path / "raw",
        str(corpus),
        read_checksums(sums),
        "{lang}-{split}.txt",
    )
    assert [f.name for f in files] == ["train.fr", "train.it"]
    assert (tmp_path / "raw/train.it").read_text(encoding="utf-8") == "Ciao.\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "corpus.sha256", "raw"]


def test_checksum_file_errors(tmp_path):
    with pytest.raises(
        NMTError, match=r"checksum file .*nope.sha256 not found \(params.yaml: data.checksums\)"
    ):
        read_checksums(tmp_path / "nope.sha256")
    (tmp_path / "bad.sha256").write_text("not a checksum line\n")
    with pytest.raises(NMTError, match=r"bad.sha256 is not a list of '<sha256> <file name>' lines"):
        read_checksums(tmp_path / "bad.sha256")
