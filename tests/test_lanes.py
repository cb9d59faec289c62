"""`make repro` in lanes: the plan and its lines on their own, then `python -m nmt.lanes` on
the real pipeline in a fresh git + DVC repo (tests/test_pipeline.py's tiny project)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from nmt import NMTError
from nmt import runtime as runtime_module
from nmt.config import parse_params
from nmt.lane_run import Lane, Runner, duration, event_line, failure_line
from nmt.lanes import lane_threads, longest_first, plan
from nmt.runtime import available_cores
from nmt.timing import Event, TimesFile
from tests.stage_deps import ARCHS
from tests.test_pipeline import package_bytes, run, stages_run, tiny_project

ROOT = Path(__file__).resolve().parents[1]
# dvc.yaml's graph as DVC reads it: each stage and the stages it depends on.
WORDS = ["download", "numericalize@words", "vocab@words"]
PIPELINE = {
    "download": [],
    "tokenize": ["download"],
    "vocab@words": ["download", "tokenize"],
    "vocab@subwords": ["download", "tokenize"],
    "numericalize@words": ["download", "vocab@words"],
    "numericalize@subwords": ["download", "vocab@subwords"],
    **{f"settings@{arch}": [] for arch in ARCHS},
    **{f"train@{a}": [*WORDS, f"settings@{a}"] for a in ("lstm", "gru", "attention")},
    **{f"evaluate@{a}": [*WORDS, f"settings@{a}", f"train@{a}"] for a in ("lstm", "gru")},
    "evaluate@attention": [*WORDS, "settings@attention", "train@attention"],
    "train@transformer": ["download", "numericalize@subwords", "settings@transformer"],
    "evaluate@transformer": ["download", "settings@transformer", "train@transformer"],
    "export@transformer": ["evaluate@transformer", "train@transformer"],
    **{f"heatmaps@{arch}": ["download", f"settings@{arch}", f"train@{arch}"] for arch in ARCHS},
    "curves": [f"train@{arch}" for arch in ARCHS],
}


def test_data_stages_first_then_a_lane_per_architecture_then_the_rest():
    todo = plan(PIPELINE, ARCHS, {})
    data = {"download", "tokenize"}
    data |= {f"{stage}@{v}" for stage in ("vocab", "numericalize") for v in ("words", "subwords")}
    assert set(todo.data.stages) == data | {f"settings@{arch}" for arch in ARCHS}
    assert todo.data.args == ("repro", "--single-item", *todo.data.stages)
    assert todo.final.stages == ("curves",) and todo.final.args == ("repro",)  # checks the rest
    lanes = {lane.name: lane for lane in todo.lanes}
    assert lanes["gru"].stages[0] == "train@gru"
    assert set(lanes["gru"].stages) == {"train@gru", "evaluate@gru", "heatmaps@gru"}
    transformer = lanes["transformer"].stages
    assert transformer.index("evaluate@transformer") < transformer.index("export@transformer")
    assert lanes["transformer"].args == ("repro", "--single-item", *transformer)
    for lane in todo.lanes:  # each stage after the stages it depends on
        for i, stage in enumerate(lane.stages):
            assert not set(PIPELINE[stage]) & set(lane.stages[i:]), stage
    with pytest.raises(NMTError, match="no stage train@rnn for the architecture rnn"):
        plan(PIPELINE, (*ARCHS, "rnn"), {})


def test_some_architectures_run_their_lanes_and_nothing_of_the_others():
    todo = plan(PIPELINE, ("gru", "attention"), {})
    assert [lane.name for lane in todo.lanes] == ["attention", "gru"]
    assert {"settings@gru", "settings@attention", "numericalize@words"} <= set(todo.data.stages)
    assert not {"settings@lstm", "vocab@subwords", "numericalize@subwords"} & set(todo.data.stages)
    assert todo.final is None  # curves and the other architectures' stages wait


def test_the_data_phase_runs_the_stale_stages_and_those_below_them_only():
    def data_stages(stale):
        todo = plan(PIPELINE, ("transformer",), {}, stale)
        return todo.data.stages if todo.data else ()

    assert data_stages({"vocab@subwords"}) == ("vocab@subwords", "numericalize@subwords")
    assert data_stages({"settings@transformer"}) == ("settings@transformer",)
    assert data_stages(set()) == ()  # nothing to check: download's outputs are not locked
    assert set(data_stages({"download"})) == {
        "download",
        "tokenize",
        "vocab@subwords",
        "numericalize@subwords",
    }  # settings@transformer reads params alone


def test_lanes_start_longest_first():
    lanes = {arch: [f"train@{arch}", f"evaluate@{arch}"] for arch in ("gru", "transformer", "x")}
    lanes |= {"attention": ["train@attention"], "lstm": ["train@lstm"]}
    assert longest_first(lanes, {}) == ["lstm", "attention", "gru", "transformer", "x"]
    seconds = {"train@gru": 600.0, "evaluate@gru": 100.0, "train@x": 650.0, "train@lstm": 0.0}
    assert longest_first(lanes, seconds) == ["gru", "x", "lstm", "attention", "transformer"]


def test_a_lane_takes_as_many_cores_as_its_widest_stage(monkeypatch, default_params):
    monkeypatch.setattr(runtime_module, "available_cores", lambda: 4)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert lane_threads(default_params) == 1
    raw["gru"]["evaluate"] = {"threads": 2}
    assert lane_threads(parse_params(raw)) == 2
    raw["transformer"]["train"] |= {"threads": 2, "processes": 2}  # torchrun's ranks
    assert lane_threads(parse_params(raw)) == 4
    raw["attention"]["train"] = {"threads": 5}
    with pytest.raises(NMTError, match=r"attention\.train\.threads is 5 but this machine has 4"):
        lane_threads(parse_params(raw))


def test_each_stage_is_one_line_and_a_failure_names_its_log():
    gru = Lane("gru", ("train@gru", "evaluate@gru"), ())
    assert event_line(gru, Event("started", "train@gru")) == "[gru] train@gru started"
    done = Event("ended", "train@gru", 6000.4)
    assert event_line(gru, done) == "[gru] train@gru done in 1 h 40 min"
    assert event_line(gru, done, "failed") == "[gru] train@gru failed after 1 h 40 min"
    assert event_line(gru, Event("skipped", "evaluate@gru")) == "[gru] evaluate@gru up to date"
    assert event_line(gru, Event("skipped", "download")) is None  # not the lane's to run
    assert [duration(s) for s in (0.4, 59.6, 61, 3599, 3600)] == [
        "0 s",
        "1 min 0 s",
        "1 min 1 s",
        "59 min 59 s",
        "1 h 0 min",
    ]
    error = "error: the GRU is broken (DVC removed train@gru's outputs before running it)"
    assert failure_line(gru, "train@gru", error, 255) == (
        "train@gru failed: the GRU is broken (DVC removed train@gru's outputs before running "
        "it); its lane's output: logs/lanes/gru.log"
    )
    assert failure_line(gru, None, "ERROR: Unable to acquire lock", 255) == (
        "lane gru (dvc exit status 255, before any stage ran) failed: Unable to acquire lock; "
        "its lane's output: logs/lanes/gru.log"
    )


FAKE_DVC = """#!/bin/sh
shift 2  # --wait-for-lock repro
for stage in "$@"; do
  echo "Running stage '$stage':"
  case $stage in *@gru) echo "error: the GRU is broken"; echo "ERROR: failed: $stage"; exit 1;; esac
  sleep 0.3
done
"""


def test_a_failed_lane_is_one_line_and_the_others_run_on(tmp_path, monkeypatch, capsys):
    """The runner on its own, with a stand-in for dvc that fails the GRU's lane."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/dvc").write_text(FAKE_DVC)
    (tmp_path / "bin/dvc").chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    todo = [Lane(a, (f"train@{a}", f"evaluate@{a}"), ()) for a in ("gru", "lstm", "attention")]
    todo = [Lane(lane.name, lane.stages, ("repro", *lane.stages)) for lane in todo]
    runner = Runner(TimesFile(tmp_path / "times.json", []), {"cpu": "test"}, width=2)
    runner.phase(todo, 2)
    assert runner.failures == [
        "train@gru failed: the GRU is broken; its lane's output: logs/lanes/gru.log"
    ]
    lines = capsys.readouterr().out.splitlines()
    assert "[gru] train@gru started" in lines and "[gru] evaluate@gru started" not in lines
    assert any(line.startswith("[gru] train@gru failed after ") for line in lines)
    for arch in ("lstm", "attention"):  # the lane after the failed one starts all the same
        assert any(line.startswith(f"[{arch}] evaluate@{arch} done in ") for line in lines)
    assert "ERROR: failed: train@gru" in (tmp_path / "logs/lanes/gru.log").read_text()
    spans = json.loads((tmp_path / "times.json").read_text())["segments"][0]["spans"]
    assert {s["lane"] for s in spans.values()} == {"gru", "lstm", "attention"}
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    runner.phase(todo[:1], 1)
    assert runner.failures[-1] == (
        "lane gru could not start dvc: [Errno 2] No such file or directory: 'dvc'"
    )


SLOW_TO_STOP = """import signal, sys, time
def stopping(signum, frame):
    with open(sys.argv[1], "a") as out:
        out.write(f"{time.time()} ")
        time.sleep(0.5)  # a stage's last steps
        out.write(f"{time.time()}\\n")
    sys.exit(130)
signal.signal(signal.SIGTERM, stopping)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_stop_ends_the_lanes_one_after_another(tmp_path):
    """Lanes' stages end by removing a file they share (dvclive's signal for VS Code): two
    ending at once can collide, so the second lane hears of the stop once the first ended."""
    runner = Runner(TimesFile(tmp_path / "times.json", []), {"cpu": "test"}, width=2)
    for lane in ("lstm", "gru"):
        process = runner.running[lane] = subprocess.Popen(
            [sys.executable, "-c", SLOW_TO_STOP, str(tmp_path / f"{lane}.txt")],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        runner.threads.append(threading.Thread(target=process.wait))  # reaps, as a lane's does
        runner.threads[-1].start()
    runner.stop()
    spans = sorted(
        tuple(map(float, (tmp_path / f"{lane}.txt").read_text().split()))
        for lane in ("lstm", "gru")
    )
    assert spans[0][1] <= spans[1][0], spans  # the second began its end after the first's
    assert [process.returncode for process in runner.running.values()] == [130, 130]


@pytest.mark.parametrize("threads", [0, "cores + 1"])
def test_threads_the_machine_cannot_give_are_one_line_before_anything_runs(tmp_path, threads):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    cores = available_cores()
    raw["train"]["threads"] = cores + 1 if threads == "cores + 1" else threads
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "nmt.lanes"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "error: params.yaml: train.threads must be >= 1, got 0\n"
        if threads == 0
        else f"error: params.yaml: train.threads is {cores + 1} but this machine has {cores} "
        f"cores; set it to at most {cores} (dvc exp run -S train.threads={cores})\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("lanes")
    env = tiny_project(root, mirror)
    return root, {**env, "PYTHONPATH": "src"}  # the project's own nmt runs the lanes


def lanes(root: Path, env: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nmt.lanes", "--out", "repro_time.json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def width() -> int:
    return min(len(ARCHS), available_cores())  # at train.threads 1


@pytest.mark.slow
def test_lanes_build_everything_side_by_side_and_train_what_one_alone_trains(project):
    root, env = project
    done = lanes(root, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(root, env, "dvc", "status").strip() == "Data and pipelines are up to date."
    times = json.loads((root / "repro_time.json").read_text())
    spans, lines = times["segments"][-1]["spans"], done.stdout.splitlines()
    assert times["complete"] and times["segments"][-1]["lanes"] == width()
    assert lines[0] == (
        f"lanes: lstm, attention, gru, transformer, {width()} at once ({available_cores()} "
        "cores, 1 thread each); each lane's output in logs/lanes/"
    )
    for stage, span in spans.items():
        kind, _, item = stage.partition("@")
        lane = item if kind in ("train", "evaluate", "heatmaps", "export") else "data"
        lane = "final" if stage == "curves" else lane
        assert span["lane"] == lane, stage
        assert f"[{lane}] {stage} started" in lines
        assert any(line.startswith(f"[{lane}] {stage} done in ") for line in lines)
        assert f"Running stage '{stage}'" in (root / f"logs/lanes/{lane}.log").read_text()
    assert set(spans) == set(times["stages"]) and len(spans) == 24
    in_lanes = [s for s, span in spans.items() if span["lane"] not in ("data", "final")]
    data = [s for s, span in spans.items() if span["lane"] == "data"]
    assert max(spans[s]["end"] for s in data) <= min(spans[s]["start"] for s in in_lanes)
    assert max(spans[s]["end"] for s in in_lanes) <= spans["curves"]["start"]
    if width() > 1:  # the two longest lanes start together
        assert spans["train@attention"]["start"] < spans["train@lstm"]["end"]
    assert run(root, env, "git", "status", "--porcelain", "--ignored", "logs/lanes") == (
        "!! logs/lanes/\n"
    )

    # Beside other lanes at 1 thread, a model is what the same stage trains alone.
    beside = {arch: package_bytes(root / "models" / arch) for arch in ("lstm", "attention")}
    for arch in beside:
        shutil.rmtree(root / "models" / arch)
        shutil.rmtree(root / "checkpoints" / arch)
        assert stages_run(run(root, env, "dvc", "repro", "-s", f"train@{arch}")) == {
            f"train@{arch}"
        }
        alone = package_bytes(root / "models" / arch)
        assert alone["model.safetensors"] == beside[arch]["model.safetensors"], arch
    run(root, env, "dvc", "checkout", "-q")  # decoding.json, which evaluate@ writes
    assert run(root, env, "dvc", "status").strip() == "Data and pipelines are up to date."


@pytest.mark.slow
def test_a_failed_lane_lets_the_others_finish_and_names_its_stage_and_log(project):
    root, env = project
    module = root / "src/nmt/models/gru.py"
    code = module.read_text()
    module.write_text(  # the GRU's lane fails in training; settings@gru only reads its Params
        f"{code}\n\ndef _broken(*args, **kwargs):\n    from nmt import NMTError\n\n"
        '    raise NMTError("the GRU\'s encoder is broken")\n\n\nGRUSeq2Seq.encode = _broken\n'
    )
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["attention"]["model"]["attn_dim"] = 6  # work for another lane
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = lanes(root, env)
    module.write_text(code)
    assert done.returncode == 1
    assert done.stderr == (
        "error: train@gru failed: the GRU's encoder is broken (DVC removed train@gru's outputs "
        "before running it: once that is fixed, `git checkout -- metrics results logs && dvc "
        "checkout` restores the committed ones); its lane's output: logs/lanes/gru.log\n"
    )
    lines = done.stdout.splitlines()
    assert any(line.startswith("[gru] train@gru failed after ") for line in lines)
    for stage in ("train", "evaluate", "heatmaps"):
        assert any(line.startswith(f"[attention] {stage}@attention done in ") for line in lines)
    assert not any(line.startswith("[final]") for line in lines)  # no curves of a failed run
    assert not json.loads((root / "repro_time.json").read_text())["complete"]
    status = subprocess.run(  # every other lane's stages are done
        ["dvc", "status", "--json"], cwd=root, env=env, capture_output=True, text=True
    )
    stale = set(json.loads(status.stdout))
    assert stale == {"settings@gru", "train@gru", "evaluate@gru", "heatmaps@gru", "curves"}


@pytest.mark.slow
@pytest.mark.skipif(available_cores() < 2, reason="two lanes at once need two cores")
def test_sigterm_stops_every_lane_and_the_next_run_resumes_them(project):
    root, env = project
    params = yaml.safe_load((root / "params.yaml").read_text())
    for arch in ("lstm", "gru"):  # long enough to be stopped after an epoch
        params[arch]["train"] = {"epochs": 3, "max_batches": 150}
        shutil.rmtree(root / "checkpoints" / arch, ignore_errors=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = json.loads((root / "repro_time.json").read_text())["segments"]
    started = subprocess.Popen(
        [sys.executable, "-m", "nmt.lanes", "--out", "repro_time.json"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoints = [root / f"checkpoints/{arch}/last.pt" for arch in ("lstm", "gru")]
    deadline = time.time() + 600
    while not all(p.is_file() for p in checkpoints) and started.poll() is None:
        assert time.time() < deadline, "no epoch ended in 10 minutes"
        time.sleep(0.5)
    started.send_signal(signal.SIGTERM)
    out, err = started.communicate(timeout=120)
    assert started.returncode == 130, out + err
    assert err.splitlines()[-1] == (
        "interrupted: every lane stopped; run `make repro` again to continue where they stopped"
    )
    for arch in ("lstm", "gru"):
        stopped = f"[{arch}] train@{arch} stopped after "
        assert any(line.startswith(stopped) for line in out.splitlines()), out
        log = (root / f"logs/lanes/{arch}.log").read_text()  # the stage got the SIGTERM too
        assert "interrupted: files written so far are complete" in log, log
    left = [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(root)]
    assert left == []  # every dvc and every stage ended
    cut_off = json.loads((root / "repro_time.json").read_text())
    assert not cut_off["complete"] and len(cut_off["segments"]) == len(before) + 1

    done = lanes(root, env)
    assert done.returncode == 0, done.stdout + done.stderr
    for arch in ("lstm", "gru"):
        log = (root / f"logs/lanes/{arch}.log").read_text()
        assert f"from checkpoints/{arch}/last.pt" in log and "train: resuming after epoch " in log
        assert json.loads((root / f"metrics/train_{arch}.json").read_text())["epochs"] == 3
    assert run(root, env, "dvc", "status").strip() == "Data and pipelines are up to date."
    times = json.loads((root / "repro_time.json").read_text())
    assert times["complete"] and len(times["segments"]) == len(before) + 2  # both counted
    parts = [s["stages"].get("train@gru", 0.0) for s in times["segments"]]
    assert min(parts[-2:]) > 0 and times["stages"]["train@gru"] == pytest.approx(sum(parts))
