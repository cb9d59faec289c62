"""What a benchmark ran on: the CPU model and the instruction-set flags that change speed."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def describe() -> dict[str, object]:
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.is_file() else ""
    fields = dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line and line[0] != " "
    )
    flags = set(fields.get("flags\t\t", "").split())
    return {
        "cpu": fields.get("model name\t", platform.processor()).strip(),
        "flags": [f for f in FLAGS if f in flags],
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
