import pytest
import torch

from nmt import NMTError
from nmt.config import BatchParams, ModelParams, TrainParams
from nmt.models import build_model
from nmt.training import Trainer, evaluate_loss, seed_everything
from tests.conftest import random_pairs

TRAIN = random_pairs(300, vocab=24, seed=1)
VALID = random_pairs(40, vocab=24, seed=2)


def make_trainer(run_dir, arch="gru", epochs=2, lr=3e-3) -> Trainer:
    seed_everything(5)
    extra = {"attn_dim": 16} if arch == "attention" else {}
    model = build_model(
        ModelParams(arch=arch, emb_dim=16, hid_dim=24, dropout=0.1, **extra), 24, 24
    )
    return Trainer(
        model,
        TRAIN,
        VALID,
        TrainParams(epochs=epochs, lr=lr),
        BatchParams(size=32),
        seed=5,
        run_dir=run_dir,
        fingerprint="tiny",
    )


@pytest.mark.parametrize("arch", ["lstm", "gru", "attention"])
def test_tiny_training_lowers_the_loss(tmp_path, arch):
    trainer = make_trainer(tmp_path, arch, epochs=10, lr=1e-2)
    before = evaluate_loss(trainer.model, VALID, 32)
    summary = trainer.fit()
    losses = [r["train_loss"] for r in trainer.history]
    assert losses[-1] < losses[0]
    assert summary["best_valid_loss"] < before - 0.3
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()


def test_same_seed_same_losses(tmp_path):
    first = make_trainer(tmp_path / "a")
    second = make_trainer(tmp_path / "b")
    first.fit()
    second.fit()
    assert [r["train_loss"] for r in first.history] == [r["train_loss"] for r in second.history]
    assert [r["valid_loss"] for r in first.history] == [r["valid_loss"] for r in second.history]


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    whole = make_trainer(tmp_path / "whole", epochs=3)
    whole.fit()

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    broken = make_trainer(tmp_path / "broken", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        broken.fit(on_epoch=stop_after_first)
    torch.manual_seed(999)  # a fresh process would start from another random state
    resumed = make_trainer(tmp_path / "broken", epochs=3)
    assert resumed.restore() and resumed.epoch == 1
    resumed.fit()
    keys = ("train_loss", "valid_loss")
    assert [[r[k] for k in keys] for r in resumed.history] == [
        [r[k] for k in keys] for r in whole.history
    ]
    for name, tensor in whole.best_state().items():
        assert torch.equal(tensor, resumed.best_state()[name]), name


def test_more_epochs_continue_a_finished_run(tmp_path):
    short = make_trainer(tmp_path, epochs=1)
    short.fit()
    longer = make_trainer(tmp_path, epochs=2)
    assert longer.restore() and longer.epoch == 1
    fewer = make_trainer(tmp_path / "other", epochs=1)
    fewer.fingerprint = "different settings"
    assert not fewer.restore()


def test_nan_loss_stops_with_a_clear_error_and_keeps_checkpoints(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    original = trainer.model.loss

    def poisoned(*args):
        loss = original(*args)
        return loss * float("nan") if trainer.epoch == 1 else loss

    trainer.model.loss = poisoned
    with pytest.raises(
        NMTError,
        match=r"training loss became nan in epoch 2, batch 1; stopped, "
        r"keeping the checkpoints of epoch 1",
    ):
        trainer.fit()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1
