"""Fetch a parallel corpus's raw files, verify their SHA-256, and write them decompressed.

The corpus is set in params.yaml (`data`): a URL base or a local folder, a file of SHA-256
sums (the `sha256sum` format), how files are named, and the language pair; the default is
Multi30k task1. A mirror (a local folder or any URL base with files of the same names) given
in the MULTI30K_MIRROR environment variable replaces the URL base; it is not a param, since
the checksums guarantee that every source yields the same bytes.

Files stream through a staging folder in chunks, so memory stays small for any corpus size,
and reach the destination only once every file is verified: a failure leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from nmt import NMTError

MIRROR_ENV = "MULTI30K_MIRROR"
CHUNK = 1 << 20


def read_checksums(path: Path) -> dict[str, str]:
    """File name -> SHA-256, from `sha256sum` output."""
    if not path.is_file():
        raise NMTError(f"checksum file {path} not found (params.yaml: data.checksums)")
    pairs = [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line]
    if any(len(pair) != 2 or len(pair[0]) != 64 for pair in pairs):
        raise NMTError(f"{path} is not a list of '<sha256> <file name>' lines")
    return {name.lstrip("*"): digest for digest, name in pairs}


def resolve_source(default_url: str) -> str:
    return os.environ.get(MIRROR_ENV) or default_url


def _offline_hint() -> str:
    return (
        f"without internet access, set {MIRROR_ENV} to a folder or URL base holding the "
        f"corpus files, e.g. export {MIRROR_ENV}=../shared/multi30k"
    )


@contextmanager
def open_source(source: str, name: str) -> Iterator[BinaryIO]:
    """`name` from a local folder or from a URL base (http, https, file), as a byte stream."""
    if "://" not in source:  # a local folder
        path = Path(source) / name
        if not path.is_file():
            raise NMTError(f"mirror {source} has no file {name}; {_offline_hint()}")
        with path.open("rb") as stream:
            yield stream
        return
    url = f"{source.rstrip('/')}/{name}"
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NMTError(f"could not fetch {url} ({reason}); {_offline_hint()}") from None
    with response:
        yield response


def fetch_verified(source: str, name: str, expected: str, dest: Path) -> None:
    """Copy `name` to `dest` while hashing it; refuse it if its SHA-256 is not `expected`."""
    digest = hashlib.sha256()
    with open_source(source, name) as stream, dest.open("wb") as out:
        try:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        except (urllib.error.URLError, OSError) as err:
            raise NMTError(f"reading {name} from {source} failed ({err}); try again") from None
    if digest.hexdigest() != expected:
        raise NMTError(
            f"checksum mismatch for {name} from {source}: expected {expected}, "
            f"got {digest.hexdigest()}; the file is damaged or not the official release"
        )


def decompress(packed: Path, dest: Path, name: str, source: str) -> None:
    """gunzip `packed` into `dest` (the tokenizer checks the text line by line)."""
    try:
        with gzip.open(packed, "rb") as stream, dest.open("wb") as out:
            shutil.copyfileobj(stream, out, CHUNK)
    except (OSError, EOFError, zlib.error) as err:
        raise NMTError(f"{name} from {source} could not be decompressed: {err}") from None


def download(
    splits: list[str] | tuple[str, ...],
    langs: tuple[str, ...],
    dest: Path,
    source: str,
    checksums: dict[str, str],
    file_name: str = "{split}.{lang}.gz",
) -> list[Path]:
    """Fetch and verify every file into a staging folder, then move them all to `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as staging:
        staged = []
        for split in splits:
            for lang in langs:
                name = file_name.format(split=split, lang=lang)
                if name not in checksums:
                    raise NMTError(
                        f"no checksum is known for {name}: the corpus has no such file "
                        f"(check data.splits, the languages and data.checksums in params.yaml)"
                    )
                fetched = Path(staging) / name
                fetch_verified(source, name, checksums[name], fetched)
                text = Path(staging) / f"{split}.{lang}"
                if name.endswith(".gz"):
                    decompress(fetched, text, name, source)
                    fetched.unlink()
                elif fetched != text:
                    fetched.rename(text)
                staged.append(text)
        dest.mkdir(exist_ok=True)
        written = []
        for path in staged:
            os.replace(path, dest / path.name)
            written.append(dest / path.name)
    return written
