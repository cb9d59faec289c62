"""Atomic file writes: an output is either complete or absent, never half written."""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from nmt import NMTError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    Only a regular file or a new path is ever replaced. A symbolic link is followed: its
    target is replaced and the link stays. A device, FIFO or socket is no file to replace: the
    block writes to it directly, as a shell's `>` would. A folder is refused before the block
    runs, so no work is done for nothing."""
    given = path
    path = Path(os.path.realpath(path))
    if path.is_dir():
        raise NMTError(f"cannot write {given}: it is a folder; name a file")
    if path.exists() and not path.is_file():
        yield path
        return
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created like open() creates files (0o666 less the umask): mkstemp's private 0o600
        # would outlive the rename.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as err:
        raise NMTError(
            f"cannot write {path} ({err.strerror}): choose a folder you can write to"
        ) from None
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; put it in place of `path` only if the block
    succeeds. A reader sees the old folder or the new one, each whole (or, between the two
    renames, none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    tmp, old = path.parent / f".{path.name}.{tag}.tmp", path.parent / f".{path.name}.{tag}.old"
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, old):
            shutil.rmtree(leftover, ignore_errors=True)


def _write_with(path: str | Path, write: Callable[[Path], Any]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def write_text(path: str | Path, text: str) -> None:
    _write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    _write_with(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_parquet_chunks(path: str | Path, frames: Iterable[pd.DataFrame]) -> int:
    """Write frames of one schema as the row groups of one parquet file, holding one frame in
    memory at a time; the number of rows written."""
    rows = 0
    with atomic_path(path) as tmp:
        writer = None
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(frame)
        if writer is None:
            raise ValueError(f"no rows to write to {path}")
        writer.close()
    return rows


def save_torch(path: str | Path, obj: Any) -> None:
    """Byte-identical for identical objects: saved to memory first, since `torch.save` to a
    file names its archive after that file, here a random temporary name."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _write_with(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
