"""What a benchmark ran on: the CPU model and the instruction-set flags that change speed."""

from __future__ import annotations

import torch

from nmt.runtime import cpu_info

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def describe() -> dict[str, object]:
    model, flags = cpu_info()
    return {
        "cpu": model,
        "flags": [f for f in FLAGS if f in flags],
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
