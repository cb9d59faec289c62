"""bench/repro_time.py with a stand-in for dvc: a stop and a damaged timing file end in one
line, and the run so far stays in the file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
SLOW_DVC = f"""#!{sys.executable}
import signal, sys, time
def stop(signum, frame):
    print("interrupted: files written so far are complete", flush=True)
    sys.exit(130)
signal.signal(signal.SIGTERM, stop)
print("Running stage 'train@gru':", flush=True)
time.sleep(0.2)
print("train: epoch 1", flush=True)
time.sleep(60)
"""


@pytest.fixture
def bench(tmp_path):
    """A folder with params.yaml and a dvc on PATH whose one stage runs until it is stopped."""
    shutil.copy(ROOT / "params.yaml", tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/dvc").write_text(SLOW_DVC)
    (tmp_path / "bin/dvc").chmod(0o755)
    path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT / "src")}
    return tmp_path, env


def repro_time(folder: Path, env: dict, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(ROOT / "bench/repro_time.py"), "--out", "times.json", *args]
    return subprocess.Popen(command, cwd=folder, env=env, stdout=PIPE, stderr=PIPE, text=True)


def test_a_stop_reaches_dvc_and_keeps_the_run_so_far(bench):
    folder, env = bench
    timed = repro_time(folder, env)
    assert timed.stdout is not None
    assert timed.stdout.readline() == "Running stage 'train@gru':\n"
    assert timed.stdout.readline() == "train: epoch 1\n"  # the stage is timed and stoppable
    timed.send_signal(signal.SIGTERM)
    out, err = timed.communicate(timeout=60)
    assert timed.returncode == 130
    assert err == (
        "interrupted: the run so far is kept in the timing file; continue it with --resume\n"
    )
    assert out == "interrupted: files written so far are complete\n"  # the stage's own line
    times = json.loads((folder / "times.json").read_text())
    assert not times["complete"] and times["stages"]["train@gru"] > 0
    left = [p for p in psutil.process_iter(["cwd"]) if p.info["cwd"] == str(folder)]
    assert left == []  # dvc and what it ran ended with it


def test_a_damaged_timing_file_is_one_line(bench):
    folder, env = bench
    (folder / "times.json").write_text('{"complete": tru')
    timed = repro_time(folder, env, "--resume")
    out, err = timed.communicate(timeout=60)
    assert timed.returncode == 1 and out == ""
    assert err.startswith("error: times.json is not a timing file") and err.count("\n") == 1
