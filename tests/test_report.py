"""The generated results tables: equal to what the committed metrics give, showing the numbers
of the files they read, and saying when the metrics are not of the recipe's length."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nmt import report
from nmt.cli import run_stage

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "`metrics/` of commit `abc1234`"


def test_the_docs_tables_are_what_the_committed_metrics_give():
    """The one test that keeps README.md and docs/results.md from disagreeing with metrics/."""
    for path, contents in report.blocks(report.load_run(ROOT)).items():
        text = (ROOT / path).read_text(encoding="utf-8")
        for name, content in contents.items():
            found = report.block_pattern(name).search(text)
            assert found, f"{path} has no {name} block"
            assert found.group() == report.marked(name, content), (
                f"{path}'s {name} block differs from the metrics: run `make results`"
            )


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def scores(bleu: float) -> dict[str, float]:
    return {"bleu": bleu, "bleu_lowercase": bleu + 1, "bleu_tokenized": bleu + 2, "chrf": bleu + 3}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two architectures' metrics, each trained to params.yaml's recipe: the GRU 20 epochs
    (patience 5), the Transformer 50, averaged."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["archs"] = {"gru": "words", "transformer": "subwords"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    write_json(
        tmp_path / "metrics/train_gru.json",
        {"parameters": 1234567, "epochs": 20, "best_epoch": 15, "best_valid_loss": 3.0},
    )
    write_json(
        tmp_path / "metrics/train_transformer.json",
        {"parameters": 2389824, "epochs": 50, "best_epoch": 48, "averaged_epochs": 10},
    )
    for arch, ppl, bleu in (("gru", 12.3456, 31.004), ("transformer", 5.671, 40.125)):
        test = {"loss": 2.5136, "ppl": ppl, **scores(bleu)}
        write_json(tmp_path / f"metrics/eval_{arch}.json", {"test_2016_flickr": test})
        result = {"loss": 2.5136, "ppl": ppl, "greedy": scores(bleu - 1), "beam": scores(bleu)}
        write_json(
            tmp_path / f"results/eval_{arch}.json",
            {
                "test_2016_flickr": result,
                "test_2018_flickr": {**result, "ppl": ppl * 2},
                "signatures": {"bleu": "sig-bleu", "bleu_tokenized": "sig-tok", "chrf": "sig-chrf"},
            },
        )
    write_json(
        tmp_path / "bench/results/repro_time.json",
        {
            "complete": True,
            "total_seconds": 4 * 3600 + 59,
            "stages": {"train@gru": 3 * 3600 + 5 * 60 + 29},  # none for the Transformer
            "segments": [
                {"cpu": "AMD EPYC", "flags": ["avx2"], "torch": "2.13.0", "torch_threads": 2}
            ],
        },
    )
    return tmp_path


def edit(path: Path, **changes: object) -> None:
    write_json(path, {**json.loads(path.read_text(encoding="utf-8")), **changes})


def test_the_table_shows_the_files_numbers_rounded(project: Path):
    table = report.results_table(report.load_run(project, SOURCE))
    rows = {line.split(" | ")[0]: line for line in table.splitlines() if line.startswith("| `")}
    assert rows["| `gru`"] == (
        "| `gru` | 1,234,567 | 12.35 | 31.00 | 33.00 | 34.00 | 20 / 15 | 3 h 05 min | — "
        "| PPL ≈ 35\N{EN DASH}38 |"
    )
    assert rows["| `transformer`"] == (
        "| `transformer` | 2,389,824 | 5.67 | 40.12 | 42.12 | 43.12 | 50 / mean of last 10 | — "
        "| — | BLEU ≈ 36.5 |"
    )
    assert table.startswith(
        "test_2016_flickr, beam search; `metrics/` of commit `abc1234`; the reproduction ran on "
        "AMD EPYC (avx2), torch 2.13.0, 2 threads: 4 h 01 min in all."
    )
    assert "Not the full recipe" not in table


def test_every_test_set_greedy_and_beam(project: Path):
    tables = report.per_test_set_tables(report.load_run(project, SOURCE))
    assert "sacreBLEU signatures: BLEU `sig-bleu`, tokenized BLEU `sig-tok`, chrF `sig-chrf`" in (
        tables
    )
    assert "#### test_2018_flickr" in tables
    assert "| `gru` | 2.514 | 24.69 | 30.00 | 31.00 | 32.00 | 33.00 | 33.00 | 34.00 |" in tables


def test_a_note_says_when_the_metrics_are_shorter_than_the_recipe(project: Path):
    edit(project / "metrics/train_gru.json", epochs=1, best_epoch=1)
    edit(project / "metrics/train_transformer.json", epochs=1, best_epoch=1, averaged_epochs=1)
    table = report.results_table(report.load_run(project, SOURCE))
    assert table.endswith(
        "\n\n**Not the full recipe:** the committed metrics come from 1 epoch while params.yaml's "
        "recipe trains 20 (`gru`) or 50 (`transformer`); `make repro` trains the recipe."
    )


def test_early_stopping_is_the_recipe_but_a_run_cut_short_is_not(project: Path):
    edit(project / "metrics/train_gru.json", epochs=12, best_epoch=7)  # 5 epochs, no better
    assert not report.recipe_note(report.load_run(project, SOURCE))
    edit(project / "metrics/train_gru.json", epochs=12, best_epoch=8)  # stopped before that
    assert report.recipe_note(report.load_run(project, SOURCE)) == (
        "**Not the full recipe:** the committed metrics come from 12 epochs while params.yaml's "
        "recipe trains 20 (`gru`); `make repro` trains the recipe."
    )


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    done = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True)
    return done.stdout.strip()


def test_write_rewrites_only_the_blocks_and_names_the_commit(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    before, after = "# Title\n\ntext before\n\n", "\n\ntext after\n"
    empty = report.marked("results", "old") + "\n" + report.marked("test-sets", "old")
    (project / "README.md").write_text(before + report.marked("results", "old") + after)
    (project / "docs").mkdir()
    (project / "docs/results.md").write_text(before + empty + after)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "metrics")
    monkeypatch.setattr(sys, "argv", ["report", "--write", "--root", str(project)])
    report.main()
    readme = (project / "README.md").read_text()
    commit = git(project, "log", "-1", "--format=%h")
    table = report.results_table(report.load_run(project, f"`metrics/` of commit `{commit}`"))
    assert readme == before + report.marked("results", table) + after
    assert f"`metrics/` of commit `{commit}`" in (project / "docs/results.md").read_text()
    edit(project / "metrics/train_gru.json", epochs=19)
    assert report.metrics_source(project) == (
        f"`metrics/` with changes not yet committed after commit `{commit}`"
    )


def test_a_missing_metrics_file_is_one_line_naming_the_stage(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    (project / "metrics/train_gru.json").unlink()
    monkeypatch.setattr(sys, "argv", ["report", "--root", str(project)])
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's handlers alone
    with pytest.raises(SystemExit) as stopped:
        run_stage(report.main)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: {project}/metrics/train_gru.json not found: `dvc repro train@gru` writes it\n"
    )


def test_a_run_in_lanes_says_how_many_ran_at_once(project: Path):
    """Their stages' times overlap: a train time is that of a training beside another."""
    times = project / "bench/results/repro_time.json"
    first = json.loads(times.read_text(encoding="utf-8"))["segments"][0]
    edit(times, segments=[first, {**first, "torch_threads": 1, "lanes": 2}])
    table = report.results_table(report.load_run(project, SOURCE))
    assert table.startswith(
        "test_2016_flickr, beam search; `metrics/` of commit `abc1234`; the reproduction ran on "
        "AMD EPYC (avx2), torch 2.13.0, 2 threads then AMD EPYC (avx2), torch 2.13.0, 1 thread, "
        "up to 2 lanes at once: 4 h 01 min in all."
    )


def test_one_machine_is_named_once_though_its_last_phase_ran_alone(project: Path):
    """`curves` runs after the lanes as a segment of its own: still the same machine."""
    times = project / "bench/results/repro_time.json"
    first = json.loads(times.read_text(encoding="utf-8"))["segments"][0]
    edit(times, segments=[{**first, "lanes": 2}, {**first, "lanes": 2}, first])
    table = report.results_table(report.load_run(project, SOURCE))
    assert table.startswith(
        "test_2016_flickr, beam search; `metrics/` of commit `abc1234`; the reproduction ran on "
        "AMD EPYC (avx2), torch 2.13.0, 2 threads, up to 2 lanes at once: 4 h 01 min in all."
    )
