"""Where training runs: devices, mixed precision, and data-parallel ranks (gloo, 2 processes)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml

from nmt import NMTError
from nmt.batching import join_small_batches
from nmt.config import BatchParams, TrainParams, parse_params
from nmt.models import architecture, build_model
from nmt.runtime import (
    Ranks,
    available_cores,
    check_mixed_precision,
    cpu_info,
    relaunch,
    resolve_device,
    start_ranks,
    stop_ranks,
    use_threads,
)
from nmt.training import Trainer, seed_everything
from tests.conftest import ROOT, random_pairs

TRAIN = random_pairs(203, vocab=24, seed=1)  # 203: the last batch of 32 is short
VALID = random_pairs(41, vocab=24, seed=2)
# Dropout draws differ between ranks and a single process, so it is off here.
SETTINGS = {
    "gru": ({"emb_dim": 16, "hid_dim": 24}, {"teacher_forcing": 0.5}),
    "transformer": (
        {"emb_dim": 24, "hid_dim": 24, "heads": 4, "n_layers": 1, "ff_dim": 32},
        {"teacher_forcing": 1.0, "label_smoothing": 0.1},
    ),
}


def tiny_trainer(arch: str, run_dir, ranks: Ranks | None = None, **options) -> Trainer:
    model_settings, train_settings = SETTINGS[arch]
    seed_everything(7)
    model = build_model(arch, architecture(arch).Params(dropout=0.0, **model_settings), 24, 24)
    params = TrainParams(epochs=2, lr=3e-3, **train_settings, **options)
    batch = BatchParams(size=32)
    return Trainer(model, TRAIN, VALID, params, batch, 7, run_dir, "tiny", ranks or Ranks())


def rendezvous_store() -> dist.TCPStore:
    """A store on a port the system picks, held open while the ranks run: they join it as
    clients, as they join torchrun's agent store, so no other process can take the port."""
    return dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)


def train_as_rank(rank: int, world: int, port: int, arch: str, run_dir, out) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        TORCHELASTIC_USE_AGENT_STORE="True",
    )
    torch.set_num_threads(1)
    _, ranks = start_ranks(torch.device("cpu"), world)
    trainer = tiny_trainer(arch, run_dir, ranks, processes=world)
    trainer.fit()
    if ranks.is_main:
        torch.save({"history": trainer.history, "model": trainer.model.state_dict()}, out)
    stop_ranks(ranks)


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_two_gloo_processes_train_like_one(tmp_path, arch):
    single = tiny_trainer(arch, tmp_path / "single", processes=2)
    single.ranks = Ranks()  # one process, the same settings and fingerprint
    single.fit()
    out = tmp_path / "ranks.pt"
    store = rendezvous_store()
    mp.spawn(
        train_as_rank, args=(2, store.port, arch, tmp_path / "ranks", out), nprocs=2, join=True
    )
    ranked = torch.load(out, weights_only=False)
    for one, two in zip(single.history, ranked["history"], strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-5)
        assert two["valid_loss"] == pytest.approx(one["valid_loss"], rel=1e-5)
    for name, weights in single.model.state_dict().items():
        other = ranked["model"][name]
        if name.endswith("in_proj.bias"):
            # The keys' bias has no true gradient (softmax ignores a shift shared by every
            # key), so Adam turns its rounding noise into steps: compare queries and values.
            weights, other = weights.chunk(3)[::2], other.chunk(3)[::2]
        torch.testing.assert_close(other, weights, rtol=1e-4, atol=1e-5)
    # Only the main rank writes; last.pt holds each rank's dropout random state.
    assert sorted(p.name for p in (tmp_path / "ranks").iterdir()) == ["best.pt", "last.pt"]
    last = torch.load(tmp_path / "ranks" / "last.pt", weights_only=False)
    assert len(last["torch_rng"]) == 2


def test_ranks_split_each_batch_once_and_short_batches_join_the_one_before():
    groups = [np.arange(0, 5), np.arange(5, 6), np.arange(6, 9)]
    joined = join_small_batches(groups, 2)
    assert [g.tolist() for g in joined] == [[0, 1, 2, 3, 4, 5], [6, 7, 8]]
    first_short = join_small_batches([np.arange(1), np.arange(1, 4)], 2)
    assert [g.tolist() for g in first_short] == [[0, 1, 2, 3]]
    assert join_small_batches(groups, 1) == groups
    shares = [np.concatenate([g[r::2] for g in joined]) for r in range(2)]
    assert sorted(np.concatenate(shares).tolist()) == list(range(9))
    with pytest.raises(NMTError, match="1 training examples cannot be split 2 ways"):
        join_small_batches([np.arange(1)], 2)


def test_processes_must_match_the_run():
    with pytest.raises(NMTError, match=r"train.processes is 2 but this run has 1 processes"):
        start_ranks(torch.device("cpu"), 2)
    assert start_ranks(torch.device("cpu"), 1) == (torch.device("cpu"), Ranks())


def test_devices():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NMTError, match="device must be auto, cpu or cuda"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(NMTError, match="torch sees no CUDA GPU; use auto"):
            resolve_device("cuda")


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_mixed_precision_trains_close_to_float32(tmp_path, arch):
    full = tiny_trainer(arch, tmp_path / "fp32")
    full.fit()
    mixed = tiny_trainer(arch, tmp_path / "bf16", amp=True)
    mixed.fit()
    for one, two in zip(full.history, mixed.history, strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=0.03)
        assert two["train_loss"] != one["train_loss"]  # bfloat16 did run


def test_bf16_is_refused_on_a_cpu_without_native_bf16(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512f\n")
    plain = cpu_info(cpuinfo)
    assert plain == ("Some CPU", frozenset({"fpu", "avx2", "avx512f"}))
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    with pytest.raises(NMTError, match=r"^train.amp: this CPU \(Some CPU\) has no native bf"):
        check_mixed_precision(cpu, True, plain)
    check_mixed_precision(cpu, False, plain)
    check_mixed_precision(gpu, True, plain)
    check_mixed_precision(cpu, True, ("Other CPU", frozenset({"avx512_bf16"})))
    check_mixed_precision(cpu, True, ("Other CPU", frozenset({"amx_bf16"})))


def test_a_failed_rank_ends_the_relaunch_with_its_code_and_no_traceback(
    tmp_path, capfd, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # restored afterwards, whatever relaunch sets
    monkeypatch.delenv("OMP_NUM_THREADS")
    script = tmp_path / "rank.py"
    script.write_text(
        "import os, sys\n"
        'print(f\'error: rank {os.environ["RANK"]} of {os.environ["WORLD_SIZE"]} '
        'has {os.environ["OMP_NUM_THREADS"]} thread\', file=sys.stderr)\n'
        "sys.exit(3 if os.environ['RANK'] == '1' else 0)\n"
    )
    assert relaunch(2, [str(script)]) == 3
    err = capfd.readouterr().err
    assert "error: rank 1 of 2 has 1 thread" in err
    assert "Traceback" not in err and "OMP_NUM_THREADS environment variable" not in err


def test_threads_are_set_from_params_and_never_more_than_the_cores(default_params):
    before = torch.get_num_threads()
    try:
        use_threads(1, default_params.key("gru", "train", "threads"))
        assert torch.get_num_threads() == 1
        too_many = available_cores() + 1
        with pytest.raises(NMTError) as err:
            use_threads(too_many, default_params.key("transformer", "evaluate", "threads"))
        assert str(err.value) == (
            f"params.yaml: evaluate.threads is {too_many} but this machine has "
            f"{too_many - 1} cores; set it to at most {too_many - 1} "
            f"(dvc exp run -S evaluate.threads={too_many - 1})"
        )
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_a_key_set_in_an_architecture_section_is_named_there():
    params = parse_params(
        {**yaml.safe_load((ROOT / "params.yaml").read_text()), "gru": {"train": {"threads": 2}}}
    )
    assert params.key("gru", "train", "threads") == "gru.train.threads"
    assert params.key("lstm", "train", "threads") == "train.threads"
    assert params.train_params("gru").threads == 2 and params.train_params("lstm").threads == 1
