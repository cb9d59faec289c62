"""The timing file: stages timed from dvc's lines, segments added, summed and replaced."""

from __future__ import annotations

import json

import pytest

from nmt import NMTError
from nmt.timing import Clock, Event, TimesFile, busy, replaced, segment, summed

MACHINE = {"cpu": "AMD EPYC", "flags": [], "torch": "2.13.0", "torch_threads": 1}


def test_a_stage_runs_from_its_line_to_the_next_stage_or_the_end():
    clock = Clock("gru")
    assert clock.read("Stage 'download' didn't change, skipping", 10.0) == [
        Event("skipped", "download")
    ]
    assert clock.read("Running stage 'train@gru':", 11.0) == [Event("started", "train@gru")]
    assert clock.read("train: epoch 1: train loss 6.682", 50.0) == []
    assert clock.read("Running stage 'evaluate@gru':", 71.0) == [
        Event("ended", "train@gru", 60.0),
        Event("started", "evaluate@gru"),
    ]
    assert clock.current == "evaluate@gru"
    assert clock.stop(80.0) == [Event("ended", "evaluate@gru", 9.0)] and clock.stop(81.0) == []
    assert clock.spans == {"train@gru": (11.0, 71.0), "evaluate@gru": (71.0, 80.0)}


def test_a_segment_keeps_each_stage_s_lane_start_and_end():
    data, gru, lstm = Clock("data"), Clock("gru"), Clock("lstm")
    data.read("Running stage 'settings@gru':", 100.0)
    data.stop(102.0)
    gru.read("Stage 'settings@gru' didn't change, skipping", 103.0)  # ran in the data phase
    gru.read("Running stage 'train@gru':", 103.0)
    lstm.read("Running stage 'train@lstm':", 104.0)
    lstm.stop(150.0)
    run = segment(MACHINE, 100.0, 160.0, [data, gru, lstm], lanes=2)
    assert run["lanes"] == 2 and run["seconds"] == 60.0 and run["cpu"] == "AMD EPYC"
    assert run["started"] == "1970-01-01T00:01:40+00:00"
    assert run["stages"] == {"settings@gru": 2.0, "train@gru": 57.0, "train@lstm": 46.0}
    assert run["spans"]["train@gru"] == {"lane": "gru", "start": 3.0, "end": 60.0}  # running
    assert run["spans"]["train@lstm"] == {"lane": "lstm", "start": 4.0, "end": 50.0}
    assert busy(run) == 59.0  # side by side, counted once
    plain = segment(MACHINE, 100.0, 160.0, [Clock()])
    assert "lanes" not in plain and plain["stages"] == {} and plain["spans"] == {}


def test_a_replacing_rerun_keeps_only_the_last_time_of_each_stage():
    """A stage's time is that of the run behind its dvc.lock entry, and a segment whose every
    stage ran again goes."""
    first = {**MACHINE, "seconds": 100.0, "stages": {"tokenize": 10.0, "settings@gru": 4.0}}
    gru = {**MACHINE, "seconds": 3000.0, "stages": {"tokenize": 0.0, "train@gru": 2990.0}}
    lstm = {**MACHINE, "seconds": 5000.0, "stages": {"train@lstm": 4990.0}}
    stages = {"tokenize": 0.0, "settings@gru": 5.0, "train@gru": 5990.0}  # tokenize: skipped
    again = {**MACHINE, "torch_threads": 1, "seconds": 6000.0, "stages": stages}
    kept = replaced([first, gru, lstm], {name for name, s in stages.items() if s})
    assert kept == [{**first, "seconds": 96.0, "stages": {"tokenize": 10.0}}, lstm]
    assert summed([*kept, again]) == {
        "total_seconds": 96.0 + 5000.0 + 6000.0,
        "stages": {
            "tokenize": 10.0,
            "train@lstm": 4990.0,
            "settings@gru": 5.0,
            "train@gru": 5990.0,
        },
    }


def test_a_replaced_stage_of_lanes_takes_only_the_time_it_ran_alone():
    spans = {
        "tokenize": {"lane": "data", "start": 0.0, "end": 10.0},
        "train@gru": {"lane": "gru", "start": 10.0, "end": 110.0},
        "train@lstm": {"lane": "lstm", "start": 10.0, "end": 150.0},
    }
    stages = {"tokenize": 10.0, "train@gru": 100.0, "train@lstm": 140.0}
    lanes = {**MACHINE, "lanes": 2, "seconds": 155.0, "stages": stages, "spans": spans}
    [kept] = replaced([lanes], {"train@lstm"})
    assert kept["seconds"] == 155.0 - 40.0  # the 40 s train@lstm ran alone
    assert set(kept["spans"]) == set(kept["stages"]) == {"tokenize", "train@gru"}


def ran(stage: str, start: float, end: float | None = None) -> Clock:
    clock = Clock("gru")
    clock.read(f"Running stage '{stage}':", start)
    if end is not None:
        clock.stop(end)
    return clock


def test_a_run_continues_an_unfinished_file_and_replaces_in_a_finished_one(tmp_path):
    path = tmp_path / "repro_time.json"
    assert TimesFile.continuing(path) == TimesFile(path, [])
    cut_off = segment(MACHINE, 0.0, 30.0, [ran("train@gru", 0.0)])  # still running
    times = TimesFile.continuing(path).save(cut_off, complete=False)
    assert times == {"complete": False, "total_seconds": 30.0, "stages": {"train@gru": 30.0}}
    resumed = TimesFile.continuing(path)
    assert resumed.replaces_in == 0 and len(resumed.earlier) == 1
    times = resumed.save(segment(MACHINE, 100.0, 120.0, [ran("train@gru", 100.0, 120.0)]), True)
    assert times["stages"] == {"train@gru": 50.0} and times["complete"]  # the time lost counts
    rerun = TimesFile.continuing(path)
    assert rerun.replaces_in == 2 and len(rerun.earlier) == 2
    idle = Clock("gru")
    idle.read("Stage 'train@gru' didn't change, skipping", 200.0)
    before = json.loads(path.read_text())["segments"]
    rerun.save(segment(MACHINE, 200.0, 201.0, [idle]), True)  # nothing ran: nothing to add
    assert json.loads(path.read_text())["segments"] == before
    rerun.save(segment(MACHINE, 300.0, 340.0, [ran("train@gru", 300.0, 340.0)]), True)
    written = json.loads(path.read_text())
    assert written["stages"] == {"train@gru": 40.0} and len(written["segments"]) == 1
    assert written["total_seconds"] == 40.0


def test_a_rerun_cut_off_and_resumed_still_replaces_the_runs_before_it(tmp_path):
    """The rerun's first segment trains, its continuation evaluates: the earlier run's times of
    both stages go, the rerun's own cut-off training stays counted."""
    path = tmp_path / "repro_time.json"
    first = [ran("train@gru", 0.0, 100.0), ran("evaluate@gru", 100.0, 110.0)]
    TimesFile(path, []).save(segment(MACHINE, 0.0, 110.0, first), True)
    cut_off = segment(MACHINE, 200.0, 230.0, [ran("train@gru", 200.0)])
    TimesFile.replacing(path).save(cut_off, complete=False)
    resumed = [ran("train@gru", 300.0, 350.0), ran("evaluate@gru", 350.0, 362.0)]
    times = TimesFile.resuming(path).save(segment(MACHINE, 300.0, 362.0, resumed), True)
    assert times["stages"] == {"train@gru": 80.0, "evaluate@gru": 12.0}
    assert len(json.loads(path.read_text())["segments"]) == 2


def test_a_damaged_timing_file_is_one_clear_error(tmp_path):
    path = tmp_path / "repro_time.json"
    path.write_bytes(b'{"complete": tru')  # damaged: cut short
    with pytest.raises(NMTError, match=r"is not a timing file .* remove it to start a new one"):
        TimesFile.continuing(path)


def test_runners_side_by_side_count_their_common_time_once():
    """A second `--archs` runner started beside the first: the wall time is the union."""
    first = {**MACHINE, "started": "2026-01-01T00:00:00+00:00", "seconds": 100.0, "stages": {}}
    beside = {**first, "started": "2026-01-01T00:01:00+00:00", "seconds": 100.0}
    later = {**first, "started": "2026-01-01T01:00:00+00:00", "seconds": 10.0}
    undated = {**MACHINE, "seconds": 5.0, "stages": {}}  # an older file's segment
    assert summed([first, beside, later, undated])["total_seconds"] == 160.0 + 10.0 + 5.0
