"""Where the code runs: the device, mixed precision, and the processes of a data-parallel run.

One CPU process is the default and the tested path. With `train.processes` > 1 the train stage
starts itself again under torchrun (`torch.distributed.run`), one process per rank; a user who
runs torchrun by hand (several GPUs, several machines) gets the same code path. Ranks talk over
gloo on CPU and NCCL on GPU, chosen from the device.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed import run as torchrun
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from nmt import NMTError


def show_progress() -> bool:
    """Progress bars go to a terminal's stderr, never into logs or CI output."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def resolve_device(name: str) -> torch.device:
    """`auto` is the GPU where there is one, else the CPU; a named device must exist."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NMTError(f"params.yaml: device must be auto, cpu or cuda[:N], got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NMTError(f"params.yaml: device is {name!r} but torch sees no CUDA GPU; use auto")
    if device.type not in ("cpu", "cuda"):
        raise NMTError(f"params.yaml: device must be auto, cpu or cuda[:N], got {name!r}")
    return device


NATIVE_BF16 = frozenset(("avx512_bf16", "amx_bf16"))  # CPU flags of bfloat16 arithmetic


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> tuple[str, frozenset[str]]:
    """This CPU's model name and instruction-set flags (from Linux; unknown elsewhere)."""
    text = path.read_text() if path.is_file() else ""
    fields = dict(
        (key.strip(), value.strip())
        for key, value in (line.split(":", 1) for line in text.splitlines() if ":" in line)
    )
    return fields.get("model name", "an unknown CPU"), frozenset(fields.get("flags", "").split())


def available_cores() -> int:
    """The cores this process may run on (its affinity, where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_threads(threads: int, key: str) -> None:
    """More threads than cores would only wait for each other: params.yaml's `key` asking
    for them is refused in one line."""
    cores = available_cores()
    if threads > cores:
        raise NMTError(
            f"params.yaml: {key} is {threads} but this machine has {cores} cores; set it to at "
            f"most {cores} (dvc exp run -S {key}={cores})"
        )


def use_threads(threads: int, key: str) -> None:
    """Run torch's intra-op work on `threads` threads, as params.yaml's `key` says."""
    check_threads(threads, key)
    torch.set_num_threads(threads)


SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def describe() -> dict[str, object]:
    """What a timing ran on: the CPU model and the instruction-set flags that change speed."""
    model, flags = cpu_info()
    return {
        "cpu": model,
        "flags": [f for f in SPEED_FLAGS if f in flags],
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def check_mixed_precision(device: torch.device, amp: bool, cpu: tuple[str, frozenset[str]]) -> None:
    """bfloat16 pays on GPUs and on CPUs that compute in it; other CPUs emulate it, slower
    than float32, so there the option is refused rather than left to run slowly."""
    model, flags = cpu
    if amp and device.type == "cpu" and not flags & NATIVE_BF16:
        raise NMTError(
            f"train.amp: this CPU ({model}) has no native bfloat16 (no avx512_bf16 or amx_bf16 "
            f"flag), where bfloat16 trains slower than float32; set train.amp to false"
        )


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast: the exponent range of float32, so no loss scaling is needed."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a data-parallel run; a single process is rank 0 of 1."""

    rank: int = 0
    world: int = 1
    device: str | torch.device = "cpu"  # where collectives' buffers live (NCCL: the GPU)

    @property
    def is_main(self) -> bool:
        """Only the main rank writes files and prints."""
        return self.rank == 0

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over all ranks (every rank gets it)."""
        if self.world == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total / self.world

    def sum(self, *values: float) -> list[float]:
        """Element-wise sums of some numbers over all ranks."""
        if self.world == 1:
            return list(values)
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        return totals.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value`, in rank order, on the main rank (an empty list elsewhere)."""
        if self.world == 1:
            return [value]
        out: list[Any] | None = [None] * self.world if self.is_main else None
        dist.gather_object(value, out)
        return out or []


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ


def relaunch(processes: int, argv: list[str]) -> int:
    """Run this script again as `processes` ranks on this machine under torchrun; its exit code.
    Each rank gets one intra-op thread unless OMP_NUM_THREADS says otherwise (torchrun's
    default, set here so that it is not announced). A rank that fails has printed its own
    one-line error, so torchrun's traceback of it is not shown."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={processes}", *argv])
    try:
        torchrun.run(args)
    except ChildFailedError as failed:
        code = failed.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code  # killed by a signal: the shell's 128 + N
    return 0


def start_ranks(device: torch.device, processes: int) -> tuple[torch.device, Ranks]:
    """Join the process group torchrun set up, if any; each GPU rank gets its own GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world != processes:
        raise NMTError(
            f"train.processes is {processes} but this run has {world} processes; set "
            f"train.processes={world} so that the run is recorded with the size it ran at"
        )
    if world == 1:
        return device, Ranks()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device, Ranks(dist.get_rank(), dist.get_world_size(), device)


def stop_ranks(ranks: Ranks) -> None:
    """Leave the process group together: the other ranks wait until the main rank has
    written the model, since a rank that tears its gloo connections down while a peer still
    holds them can abort at exit."""
    if ranks.world > 1:
        dist.barrier()
        dist.destroy_process_group()
