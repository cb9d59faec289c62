"""The `translate` console script, run as a user runs it, on a tiny checkpoint."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import torch

from nmt.export import CTranslate2Translator
from nmt.search import SearchSettings
from tests.conftest import GERMAN

TRANSLATE = Path(sys.executable).parent / "translate"


def translate(workdir: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TRANSLATE), "--max-len", "6", *args],
        cwd=workdir,
        input=stdin,
        capture_output=True,
        check=False,
    )


def test_translates_arguments_one_line_each(workdir):
    result = translate(workdir, GERMAN[0], "", GERMAN[1])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().split("\n")
    assert len(lines) == 4 and lines[3] == ""  # three lines, each ended by a newline
    assert lines[1] == ""  # an empty sentence translates to an empty line
    assert all(len(line.split()) <= 6 for line in lines)


def test_translates_standard_input_line_by_line(workdir):
    text = f"{GERMAN[0]}\n\n{GERMAN[2]}\nxyzzy quux\n{' '.join(['hund'] * 400)}\n"
    for extra in ((), ("--beam", "1"), ("--arch", "lstm")):
        result = translate(workdir, *extra, stdin=text.encode())
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().count("\n") == 5
        assert result.stdout.decode().split("\n")[1] == ""


@pytest.mark.parametrize("stdin", [b"", b"\n\n  \n"])
def test_empty_or_blank_input_gives_one_empty_line_per_line(workdir, stdin):
    result = translate(workdir, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"\n" * stdin.count(b"\n") and result.stderr == b""


def test_a_byte_order_mark_and_crlf_line_ends_are_no_part_of_a_sentence(workdir):
    text = f"\ufeff{GERMAN[0]}\r\n{GERMAN[0]}\r\n"  # as some Windows editors save a file
    result = translate(workdir, "--arch", "lstm", "--output-format", "jsonl", stdin=text.encode())
    assert result.returncode == 0, result.stderr
    first, second = (json.loads(line) for line in result.stdout.decode().splitlines())
    assert first == second and first["source"] == GERMAN[0]


def test_attention_heatmap_of_the_first_sentence(workdir, tmp_path):
    png = tmp_path / "attention.png"
    result = translate(workdir, GERMAN[1], "--show-attention", str(png))
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    result = translate(workdir, GERMAN[1], "--arch", "lstm", "--show-attention", str(png))
    assert result.returncode == 1
    assert result.stderr.decode() == "error: a 'lstm' model has no attention to show\n"


def test_transformer_translates_and_shows_cross_attention(workdir, tmp_path):
    png = tmp_path / "cross.png"
    result = translate(
        workdir, "--arch", "transformer", GERMAN[0], GERMAN[1], "--show-attention", str(png)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().count("\n") == 2
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        ((), b"ein mann\n\xff\xfe\n", "error: standard input line 2 is not valid UTF-8\n"),
        (
            ("--arch", "gru", "hallo"),
            b"",
            "error: models/gru/config.json not found: run `dvc repro train@gru` first\n",
        ),
        (("--beam", "0", "hallo"), b"", "error: --beam must be >= 1, got 0"),
        (("--max-len", "0", "hallo"), b"", "error: --max-len must be >= 1, got 0"),
        (("--length-penalty", "nan", "hallo"), b"", "error: --length-penalty must be a number"),
        (("--length-penalty", "inf", "hallo"), b"", "error: --length-penalty must be a number"),
        (
            ("--beam", "2", "--n-best", "3", "x"),
            b"",
            "error: --n-best must be between 1 and --beam (2)",
        ),
        (("-i", "models", "hallo"), b"", "error: give sentences or --input, not both"),
        (("-i", "models"), b"", "error: --input models is a folder; name a file"),
        (("-o", "models", "hallo"), b"", "error: cannot write models: it is a folder; name a file"),
        (("--device", "tpu", "hallo"), b"", "error: --device must be auto, cpu, or cuda[:N]"),
        (("-o", "/proc/x.en", "hallo"), b"", "error: cannot write /proc/x.en ("),
        (
            ("--show-attention", "models", "hallo"),
            b"",
            "error: --show-attention models is a folder; name a PNG file",
        ),
        (
            ("--engine", "ctranslate2", "--model", "models/transformer", "hallo"),
            b"",
            "error: models/transformer is a PyTorch model package; --engine ctranslate2 reads "
            "its export: --model exports/transformer (`dvc repro export@transformer` writes it)",
        ),
    ],
)
def test_bad_input_gets_one_line_and_no_traceback(workdir, args, stdin, message):
    result = translate(workdir, *args, stdin=stdin)
    assert result.returncode == 1
    assert result.stderr.decode().startswith(message)
    assert result.stderr.decode().count("\n") == 1
    assert result.stdout == b""


@pytest.mark.parametrize("engine", ["pytorch", "ctranslate2"])
def test_a_line_longer_than_the_model_reads_is_cut_with_a_warning(workdir, tmp_path, engine):
    """The other lines of the file are translated, and the long one as its first tokens."""
    source, output = tmp_path / "in.de", tmp_path / "out.en"
    source.write_text(f"{GERMAN[0]}\n{' '.join(['hund'] * 30)}\n{GERMAN[2]}\n")
    args = ("--arch", "transformer", "--engine", engine)
    result = translate(workdir, *args, "-i", str(source), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stderr.decode() == (
        f"warning: {source} line 2 has 32 positions, more than the model's 20: "
        "translated its first 18 tokens\n"
    )
    lines = output.read_text().splitlines()
    assert len(lines) == 3
    first_tokens = translate(workdir, *args, " ".join(["hund"] * 18))  # 20 positions: not cut
    assert first_tokens.stderr == b"" and first_tokens.stdout.decode() == f"{lines[1]}\n"


def test_a_reader_that_leaves_early_ends_it_quietly(workdir, tmp_path):
    """`translate < file | head -1`: no traceback when the pipe closes."""
    source = tmp_path / "many.de"
    source.write_text("".join(f"{line}\n" for line in GERMAN * 2000))  # more than a pipe holds
    with source.open("rb") as lines:
        process = subprocess.Popen(
            [str(TRANSLATE), "--max-len", "6"],
            cwd=workdir,
            stdin=lines,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read()
        code = process.wait(timeout=300)
    assert first.endswith(b"\n") and err == b"" and code == 141


def test_ctranslate2_workers_translate_as_one(workdir):
    """Two batches decoded at once (a thread each) give the n-best lists and scores of one
    batch on both threads, in input order, an empty line included; and loading them leaves
    torch its threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        single, pair = (
            CTranslate2Translator.load(workdir / "exports/transformer", "float32", workers)
            for workers in (1, 2)
        )
        assert torch.get_num_threads() == 2  # a worker's single thread is not torch's
    finally:
        torch.set_num_threads(threads)
    lines = [*GERMAN, "", *reversed(GERMAN), "ein hund ."]
    settings = SearchSettings(beam_size=3, length_penalty=0.6, max_len=6, batch_size=128, n_best=2)
    one, two = (t.translate(lines, settings) for t in (single, pair))
    assert [[h.tokens for h in n_best] for n_best in two] == [
        [h.tokens for h in n_best] for n_best in one
    ]
    for a, b in zip(one, two, strict=True):
        assert [h.score for h in b] == pytest.approx([h.score for h in a], abs=1e-5)
    assert len({tuple(n_best[0].tokens) for n_best in one}) > 1  # not all alike


def test_a_copied_model_package_translates_anywhere(workdir, tmp_path):
    shutil.copytree(workdir / "models/transformer", tmp_path / "shared model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(TRANSLATE), "--model", "../shared model", "--max-len", "6"],
        cwd=elsewhere,
        input=f"{GERMAN[0]}\n{GERMAN[1]}\n".encode(),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    at_home = translate(
        workdir, "--arch", "transformer", stdin=f"{GERMAN[0]}\n{GERMAN[1]}\n".encode()
    )
    assert result.stdout == at_home.stdout and result.stdout.count(b"\n") == 2


def test_streams_a_translation_before_the_input_ends(workdir):
    process = subprocess.Popen(
        [str(TRANSLATE), "--max-len", "6"],
        cwd=workdir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdin.write(f"{GERMAN[0]}\n".encode())
    process.stdin.flush()
    ready, _, _ = select.select([process.stdout], [], [], 60)  # stdin is still open
    if not ready:
        process.kill()
    assert ready, "no translation printed before the input ended"
    first = process.stdout.readline()
    process.stdin.write(f"{GERMAN[1]}\n".encode())
    process.stdin.close()
    rest = process.stdout.read()
    assert process.wait(timeout=60) == 0, process.stderr.read()
    assert first.endswith(b"\n") and rest.count(b"\n") == 1


def test_files_in_and_out_and_jsonl(workdir, tmp_path):
    source = tmp_path / "in.de"
    source.write_text(f"{GERMAN[0]}\n\n{GERMAN[2]}\n", encoding="utf-8")
    result = translate(
        workdir,
        "-i",
        str(source),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--output-format",
        "jsonl",
        "--batch-size",
        "1",
    )
    assert result.returncode == 0 and result.stdout == b"" and result.stderr == b"", result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["source"] for row in rows] == [GERMAN[0], "", GERMAN[2]]
    assert rows[1] == {"source": "", "hypotheses": [], "scores": []}
    assert all(len(row["scores"]) == 1 and row["scores"][0] <= 0 for row in (rows[0], rows[2]))
    text = translate(workdir, "-i", str(source))
    assert text.stdout.decode().splitlines() == [(row["hypotheses"] or [""])[0] for row in rows]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.de", "out.jsonl"]


def test_n_best_lists_are_ranked_and_aligned(workdir):
    """--n-best 3: three lines a sentence in text (an empty line keeps its three), and in
    jsonl three distinct hypotheses, best first: with length penalty 0 the ranking is by
    log-probability itself."""
    args = ["--beam", "4", "--n-best", "3", "--length-penalty", "0", "--arch", "attention"]
    text = translate(workdir, *args, stdin=f"{GERMAN[0]}\n\n{GERMAN[1]}\n".encode())
    assert text.returncode == 0, text.stderr
    assert len(text.stdout.decode().splitlines()) == 9
    jsonl = translate(workdir, *args, "--output-format", "jsonl", "--attention", GERMAN[0])
    row = json.loads(jsonl.stdout)
    assert row["hypotheses"] == text.stdout.decode().splitlines()[:3]
    assert row["scores"] == sorted(row["scores"], reverse=True)
    assert len(set(row["hypotheses"])) == 3
    assert len(row["attention"][0]) == len(GERMAN[0].split()) + 2  # <sos> ... <eos>
    refused = translate(workdir, "--beam", "2", "--n-best", "3", GERMAN[0])
    assert refused.returncode != 0 and b"--n-best" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_progress_of_a_file_on_a_terminal(workdir, tmp_path):
    """On a terminal's stderr a bar counts the input file's lines (silent elsewhere, above,
    and under CI, which this test unsets so that it runs the same everywhere)."""
    source = tmp_path / "in.de"
    source.write_text(f"{GERMAN[0]}\n" * 7, encoding="utf-8")
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    args = [str(TRANSLATE), "--max-len", "3", "-i", str(source), "-o", str(tmp_path / "o.en")]
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    process = subprocess.Popen(
        args, cwd=workdir, stdin=subprocess.DEVNULL, stderr=follower, env=env
    )
    os.close(follower)
    shown = b""
    while chunk := _read(leader):
        shown += chunk
    assert process.wait(timeout=60) == 0
    assert b"7/7" in shown


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # the terminal closed with the process
        return b""


def test_a_package_decodes_as_its_evaluation_did_unless_told_otherwise(workdir, tmp_path):
    package = tmp_path / "attention"
    shutil.copytree(workdir / "models/attention", package)
    text = f"{GERMAN[0]}\n{GERMAN[2]}\n".encode()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(TRANSLATE), "--model", str(package), "--output-format", "jsonl", *args],
            cwd=workdir,
            input=text,
            capture_output=True,
            check=False,
        )

    measured = {"beam_size": 3, "length_penalty": 1.5, "max_len": 1}
    (package / "decoding.json").write_text(json.dumps(measured))
    found = run()
    assert found.returncode == 0 and found.stderr == b"", found.stderr
    assert found.stdout == run("--beam", "3", "--length-penalty", "1.5", "--max-len", "1").stdout
    assert found.stdout != run("--max-len", "6").stdout  # the package's max_len, 1, was used
    assert run("--beam", "1").stdout == run("--beam", "1", "--max-len", "1").stdout

    (package / "decoding.json").unlink()  # never evaluated: the defaults, and a note that says so
    unmeasured = run()
    assert (
        unmeasured.stdout
        == run("--beam", "5", "--length-penalty", "0.6", "--max-len", "100").stdout
    )
    assert unmeasured.stderr.decode().startswith("note: the model was never evaluated")

    (package / "decoding.json").write_text(json.dumps({**measured, "beam_size": 0}))
    refused = run()
    assert refused.returncode == 1 and refused.stdout == b""
    assert refused.stderr.decode().count("\n") == 1 and "decoding.json" in refused.stderr.decode()
