import gzip
import shutil
from pathlib import Path

import pytest

from nmt import NMTError
from nmt.download import MIRROR_ENV, download, expected_checksums, resolve_source


def test_downloads_verified_decompressed_files(mirror, tmp_path):
    files = download(["val"], ("de", "en"), tmp_path, str(mirror))
    assert [f.name for f in files] == ["val.de", "val.en"]
    lines = (tmp_path / "val.en").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1014
    assert lines[0] == gzip.decompress((mirror / "val.en.gz").read_bytes()).decode().splitlines()[0]


def test_file_url_mirror(mirror, tmp_path):
    download(["val"], ("en",), tmp_path, mirror.as_uri())
    assert (tmp_path / "val.en").stat().st_size > 0


def test_checksums_are_shipped_for_every_split():
    checksums = expected_checksums()
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
        download(["val"], ("de", "en"), out, str(bad))
    assert not out.exists() or list(out.iterdir()) == []


def test_missing_mirror_file_says_how_to_fix(tmp_path):
    with pytest.raises(NMTError, match=f"has no file val.de.gz; .*{MIRROR_ENV}="):
        download(["val"], ("de",), tmp_path / "raw", str(tmp_path))


def test_offline_error_says_how_to_set_the_mirror(tmp_path):
    # Nothing listens on port 9 of loopback: the connection is refused at once, as offline.
    with pytest.raises(
        NMTError, match=f"could not fetch http://127.0.0.1:9/val.de.gz .*{MIRROR_ENV}"
    ):
        download(["val"], ("de",), tmp_path / "raw", "http://127.0.0.1:9")
    assert not (tmp_path / "raw").exists()


def test_unknown_split_is_refused(mirror, tmp_path):
    with pytest.raises(NMTError, match=r"no checksum is known for test_2099\.de\.gz"):
        download(["test_2099"], ("de",), tmp_path, str(mirror))


def test_mirror_environment_variable_overrides_the_url(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert resolve_source("https://example.org/raw") == "https://example.org/raw"
    monkeypatch.setenv(MIRROR_ENV, "/data/multi30k")
    assert resolve_source("https://example.org/raw") == "/data/multi30k"


def test_no_temporary_files_are_left(mirror, tmp_path):
    download(["val"], ("de", "en"), tmp_path, str(mirror))
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["val.de", "val.en"]
