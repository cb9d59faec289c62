"""Fetch the Multi30k task1 raw files, verify their SHA-256, and write them decompressed.

The source is the canonical URL base unless a mirror (a local folder or any URL base with
files of the same names) is given in the MULTI30K_MIRROR environment variable. The mirror is
not a param: checksums guarantee that every source yields the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from nmt import NMTError
from nmt.io import write_text

MIRROR_ENV = "MULTI30K_MIRROR"


def expected_checksums() -> dict[str, str]:
    """File name -> SHA-256 of the official release, as shipped with this package."""
    text = resources.files("nmt").joinpath("multi30k_task1.sha256").read_text(encoding="utf-8")
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line)}


def resolve_source(default_url: str) -> str:
    return os.environ.get(MIRROR_ENV) or default_url


def _offline_hint() -> str:
    return (
        f"without internet access, set {MIRROR_ENV} to a folder or URL base holding the "
        f"Multi30k task1 raw files, e.g. export {MIRROR_ENV}=../shared/multi30k"
    )


def fetch_bytes(source: str, name: str) -> bytes:
    """Read `name` from a local folder or from a URL base (http, https, file)."""
    if "://" not in source:  # a local folder
        path = Path(source) / name
        if not path.is_file():
            raise NMTError(f"mirror {source} has no file {name}; {_offline_hint()}")
        return path.read_bytes()
    url = f"{source.rstrip('/')}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise NMTError(f"could not fetch {url} ({reason}); {_offline_hint()}") from None


def verified_text(name: str, payload: bytes, expected: str, source: str) -> str:
    digest = hashlib.sha256(payload).hexdigest()
    if digest != expected:
        raise NMTError(
            f"checksum mismatch for {name} from {source}: expected {expected}, "
            f"got {digest}; the file is damaged or not the official release"
        )
    try:
        return gzip.decompress(payload).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise NMTError(
            f"{name} from {source} could not be decompressed as UTF-8 text: {err}"
        ) from None


def download(
    splits: list[str] | tuple[str, ...], langs: tuple[str, ...], dest: Path, source: str
) -> list[Path]:
    """Fetch and verify every file first, then write them: a failure leaves nothing behind."""
    checksums = expected_checksums()
    texts = {}
    for split in splits:
        for lang in langs:
            name = f"{split}.{lang}.gz"
            if name not in checksums:
                raise NMTError(
                    f"no checksum is known for {name}: Multi30k task1 has no such "
                    f"file (check data.splits and the languages in params.yaml)"
                )
            texts[name[: -len(".gz")]] = verified_text(
                name, fetch_bytes(source, name), checksums[name], source
            )
    written = []
    for name, text in texts.items():
        write_text(dest / name, text)
        written.append(dest / name)
    return written
