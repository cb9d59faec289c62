import pytest
import torch

from nmt import NMTError, dropout
from nmt.config import BatchParams, TrainParams, available_archs
from nmt.loss import evaluate_loss
from nmt.models import architecture, build_model
from nmt.resume import average_weights
from nmt.training import Trainer, lr_factor, seed_everything
from tests.conftest import random_pairs

TRAIN = random_pairs(300, vocab=24, seed=1)
VALID = random_pairs(40, vocab=24, seed=2)


EXTRA = {
    "lstm": {"n_layers": 1},
    "attention": {"attn_dim": 16},
    "transformer": {"emb_dim": 24, "heads": 4},
}


def make_trainer(run_dir, arch="gru", epochs=2, lr=3e-3, **options) -> Trainer:
    seed_everything(5)
    settings = {"emb_dim": 16, "hid_dim": 24, "dropout": 0.1, **EXTRA.get(arch, {})}
    model = build_model(arch, architecture(arch).Params(**settings), 24, 24)
    return Trainer(
        model,
        TRAIN,
        VALID,
        TrainParams(epochs=epochs, lr=lr, **options),
        BatchParams(size=32),
        seed=5,
        run_dir=run_dir,
        fingerprint="tiny",
    )


@pytest.mark.parametrize("arch", available_archs())
def test_tiny_training_lowers_the_loss(tmp_path, arch):
    options = {"teacher_forcing": 1.0, "label_smoothing": 0.1} if arch == "transformer" else {}
    trainer = make_trainer(tmp_path, arch, epochs=10, lr=1e-2, **options)
    before = evaluate_loss(trainer.model, VALID, 32)
    summary = trainer.fit()
    losses = [r["train_loss"] for r in trainer.history]
    assert losses[-1] < losses[0]
    assert summary.best_valid_loss < before - 0.3
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()


def test_same_seed_same_losses(tmp_path):
    first = make_trainer(tmp_path / "a")
    second = make_trainer(tmp_path / "b")
    first.fit()
    second.fit()
    assert [r["train_loss"] for r in first.history] == [r["train_loss"] for r in second.history]
    assert [r["valid_loss"] for r in first.history] == [r["valid_loss"] for r in second.history]


# Options whose state must survive a resume: the schedule's step, the epochs to average.
RECIPE = {"schedule": "inverse_sqrt", "warmup": 5, "average": 2, "label_smoothing": 0.1}


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    whole = make_trainer(tmp_path / "whole", epochs=3, **RECIPE)
    whole_summary = whole.fit()

    def stop_after_first(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    broken = make_trainer(tmp_path / "broken", epochs=3, **RECIPE)
    with pytest.raises(KeyboardInterrupt):
        broken.fit(on_epoch=stop_after_first)
    torch.manual_seed(999)  # a fresh process would start from other random states
    dropout.seed(999)
    resumed = make_trainer(tmp_path / "broken", epochs=3, **RECIPE)
    assert resumed.restore() and resumed.epoch == 1
    resumed_summary = resumed.fit()
    keys = ("train_loss", "valid_loss")
    assert [[r[k] for k in keys] for r in resumed.history] == [
        [r[k] for k in keys] for r in whole.history
    ]
    assert resumed.keep_model(resumed_summary) == whole.keep_model(whole_summary)
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_more_epochs_continue_a_finished_run(tmp_path, caplog):
    caplog.set_level("INFO")
    short = make_trainer(tmp_path, epochs=2)
    short.fit()
    longer = make_trainer(tmp_path, epochs=3)
    assert longer.restore() and longer.epoch == 2
    fewer = make_trainer(tmp_path, epochs=1)
    assert not fewer.restore()
    assert "is 2 epochs in, past train.epochs (1); starting afresh" in caplog.text
    other = make_trainer(tmp_path, epochs=2)
    other.fingerprint = "different settings"
    assert not other.restore()
    assert "is from other settings; starting afresh" in caplog.text


@pytest.mark.parametrize(("options", "lost"), [({}, "best.pt"), (RECIPE, "epoch_1.pt")])
def test_resume_without_the_kept_weights_is_refused(tmp_path, options, lost):
    """The weights the kept model is made of (the best epoch's, or those of the epochs to
    average) are gone: resuming would train on and keep another model, so it stops."""
    make_trainer(tmp_path, epochs=2, **options).fit()
    (tmp_path / lost).unlink()
    with pytest.raises(NMTError, match=f"after epoch 2 but {lost} is missing from .*; delete"):
        make_trainer(tmp_path, epochs=3, **options).restore()


def test_patience_stops_early_and_keeps_the_model_the_full_run_keeps(tmp_path, monkeypatch, caplog):
    """Validation losses that fall for two epochs and then rise: with train.patience 2 the
    run stops after epoch 4, keeping epoch 2's weights, as the run of all 6 epochs does; a
    rerun resumes into the stop, and a lower patience than the run went past starts afresh."""
    caplog.set_level("INFO")
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 2.8] * 3)
    monkeypatch.setattr("nmt.training.evaluate_loss", lambda *args: next(losses))
    full = make_trainer(tmp_path / "full", epochs=6)
    full.keep_model(full.fit())
    early = make_trainer(tmp_path / "early", epochs=6, patience=2)
    summary = early.fit()
    assert (summary.epochs, summary.best_epoch) == (4, 2)
    assert "stopped after epoch 4 of 6, best epoch 2" in caplog.text
    early.keep_model(summary)
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, early.model.state_dict()[name]), name
    again = make_trainer(tmp_path / "early", epochs=6, patience=2)
    assert again.restore() and again.fit().epochs == 4
    stricter = make_trainer(tmp_path / "early", epochs=6, patience=1)
    assert not stricter.restore()
    assert "2 epochs past its best, more than train.patience (1) allows" in caplog.text


def test_nan_loss_stops_with_a_clear_error_and_keeps_checkpoints(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2)
    original = trainer.net.forward

    def poisoned(*args):
        loss, cross_entropy = original(*args)
        if trainer.epoch == 1:
            return loss * float("nan"), cross_entropy * float("nan")
        return loss, cross_entropy

    trainer.net.forward = poisoned
    with pytest.raises(
        NMTError,
        match=r"training loss became nan in epoch 2, batch 1; stopped, "
        r"keeping the checkpoints of epoch 1",
    ):
        trainer.fit()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["epoch"] == 1


def test_learning_rate_schedules():
    def rates(**options) -> list[float]:
        p = TrainParams(lr=1.0, **options)
        return [lr_factor(step, p, total_steps=10) for step in range(10)]

    assert rates() == [1.0] * 10
    assert rates(warmup=4)[:5] == [0.25, 0.5, 0.75, 1.0, 1.0]
    inverse = rates(schedule="inverse_sqrt", warmup=4)
    assert inverse[3] == 1.0 and inverse[8] == pytest.approx((4 / 9) ** 0.5)
    cosine = rates(schedule="cosine", warmup=2)
    assert cosine[:3] == [0.5, 1.0, 1.0] and cosine[6] == pytest.approx(0.5)
    assert cosine[-1] < 0.05


def test_the_optimizer_follows_the_schedule(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1, lr=1e-2, schedule="inverse_sqrt", warmup=4)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 4)
    trainer.fit()
    steps = len(trainer.epoch_batches(0, trainer.train_data))  # 10 batches of 32
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * (4 / (steps + 1)) ** 0.5)


def test_adam_takes_its_betas_from_the_params(tmp_path):
    assert make_trainer(tmp_path).optimizer.param_groups[0]["betas"] == (0.9, 0.999)  # torch's
    trainer = make_trainer(tmp_path, betas=(0.9, 0.98))
    assert trainer.optimizer.param_groups[0]["betas"] == (0.9, 0.98)


def test_averaging_keeps_the_mean_of_the_last_epochs(tmp_path):
    trainer = make_trainer(tmp_path, epochs=3, average=2)
    snapshots = []  # copies: keep_model loads the average into the same tensors
    summary = trainer.fit(
        on_epoch=lambda r: snapshots.append(
            {k: v.clone() for k, v in trainer.model.state_dict().items()}
        )
    )
    assert not summary.averaged_epochs  # until the model to keep is loaded
    summary = trainer.keep_model(summary)
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pt")) == ["epoch_2.pt", "epoch_3.pt"]
    for name, tensor in trainer.model.state_dict().items():
        mean = (snapshots[1][name] + snapshots[2][name]) / 2
        assert not torch.equal(snapshots[1][name], snapshots[2][name]), name
        assert torch.allclose(tensor, mean), name
    assert summary.averaged_epochs == 2
    assert summary.averaged_valid_loss == pytest.approx(evaluate_loss(trainer.model, VALID, 32))


def test_average_weights_of_checkpoints():
    a = {"w": torch.tensor([1.0, 3.0]), "steps": torch.tensor(1)}
    b = {"w": torch.tensor([3.0, 5.0]), "steps": torch.tensor(2)}
    mean = average_weights([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0])) and mean["steps"] == 2


def test_token_budget_batches_reach_the_trainer(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1, batch_tokens=120)
    groups = trainer.epoch_batches(0, trainer.train_data)
    assert sum(len(g) for g in groups) == len(TRAIN)
    assert all(len(g) * TRAIN.lengths[g].max() <= 120 for g in groups)
    assert len(groups) > len(
        make_trainer(tmp_path / "sentences", epochs=1).epoch_batches(0, trainer.train_data)
    )
    trainer.fit()
    assert trainer.scheduler.last_epoch == len(groups)  # one optimizer step per batch


def test_each_epoch_trains_on_the_pairs_resample_gives_it(tmp_path):
    """Subword sampling's hook: the trainer asks for every epoch's pairs and trains on them."""
    other = random_pairs(300, vocab=24, seed=9)
    asked = []

    def resample(epoch):
        asked.append(epoch)
        return [TRAIN, other][epoch % 2]

    trainer = make_trainer(tmp_path / "resampled", epochs=2)
    trainer.resample = resample
    trainer.__post_init__()  # the schedule's length comes from epoch 0's pairs
    trainer.fit()
    plain = make_trainer(tmp_path / "plain", epochs=2)
    plain.fit()
    assert asked == [0, 1]  # epoch 0's pairs made once, for the schedule and the epoch
    first, second = ([r["train_loss"] for r in t.history] for t in (trainer, plain))
    assert first[0] == second[0] and first[1] != second[1]


def test_rdrop_trains_and_logs_the_cross_entropy(tmp_path):
    """With R-Drop the logged train loss is the cross-entropy (the KL term adds to the loss
    minimised, not to the perplexity reported); it lowers the loss like plain training."""
    trainer = make_trainer(
        tmp_path, "transformer", epochs=4, lr=1e-2, teacher_forcing=1.0, rdrop_alpha=5.0
    )
    trainer.fit()
    losses = [r["train_loss"] for r in trainer.history]
    assert losses[-1] < losses[0]
    batch = TRAIN.collate(TRAIN.batch_indices(32)[0])
    forced = torch.ones(len(batch.trg), dtype=torch.bool)
    trainer.model.train()
    loss, cross_entropy = trainer.net(batch.src, batch.src_len, batch.trg, forced, None)
    assert loss.item() > cross_entropy.item() > 0
