"""`translate-server`: the API through Starlette's test client, on tiny packages (the same
translations as the `translate` command, attention rows that sum to 1, a one-line 4xx for
every bad input), and the explorer page in a real headless Chromium."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nmt.models.lstm import LSTMSeq2Seq
from nmt.search import Hypothesis, SearchSettings
from nmt.seq2seq import AttentionLayout
from nmt.serve import Limits, ServedModel, create_app
from nmt.vocab import load_vocabulary
from tests.conftest import GERMAN
from tests.test_translate import TRANSLATE, translate

SERVER = TRANSLATE.with_name("translate-server")

LIMITS = Limits(max_lines=4, max_chars=200, batch_window_ms=5)
ARCHS = ("transformer", "attention", "lstm")


def client_of(models: list[ServedModel], limits: Limits = LIMITS) -> TestClient:
    return TestClient(create_app(models, limits))


@pytest.fixture(scope="module")
def client(workdir: Path) -> Iterator[TestClient]:
    """The three tiny models, with main's metrics beside them for the Transformer."""
    (workdir / "metrics").mkdir(exist_ok=True)
    metrics = {"test_2016_flickr": {"bleu": 12.5, "chrf": 30.0}}
    (workdir / "metrics/eval_transformer.json").write_text(json.dumps(metrics))
    models = [ServedModel.load(workdir / "models" / arch, "pytorch") for arch in ARCHS]
    with client_of(models) as client:
        yield client


def post(client: TestClient, **body: object) -> dict:
    response = client.post("/translate", json=body)
    assert response.status_code == 200, response.text
    return response.json()


LINES = [GERMAN[0], "", f"  {GERMAN[1]} "]
SEARCH = {"beam": 3, "n_best": 2, "length_penalty": 0.6}


@pytest.mark.parametrize(
    ("arch", "engine"),
    [*((arch, "pytorch") for arch in ARCHS), ("transformer", "ctranslate2")],
)
def test_translations_are_the_translate_commands(workdir, client, arch, engine):
    """The same hypotheses and scores as `translate --output-format jsonl`, an empty line
    included; a Transformer with the ctranslate2 engine translates with its export."""
    args = ["--arch", arch, "--engine", engine, "--output-format", "jsonl", "--beam", "3"]
    args += ["--n-best", "2", "--length-penalty", "0.6"]  # translate() adds --max-len 6
    command = translate(workdir, *args, stdin="".join(f"{line}\n" for line in LINES).encode())
    assert command.returncode == 0, command.stderr
    want = [json.loads(row) for row in command.stdout.decode().splitlines()]
    if engine == "pytorch":
        got = post(client, model=arch, text=LINES, max_len=6, **SEARCH)
    else:
        served = ServedModel.load(workdir / "models/transformer", "ctranslate2")
        assert served.info.engine == "ctranslate2"
        with client_of([served]) as ct2:
            got = post(ct2, model=arch, text=LINES, max_len=6, attention=True, **SEARCH)
    assert got["model"] == arch
    translations = got["translations"]
    assert [t["source"] for t in translations] == [row["source"] for row in want]
    for row, translation in zip(want, translations, strict=True):
        assert [h["text"] for h in translation["hypotheses"]] == row["hypotheses"]
        scores = [h["score"] for h in translation["hypotheses"]]
        assert scores == pytest.approx(row["scores"], abs=1e-4)
    assert translations[1]["hypotheses"] == []


@pytest.mark.parametrize("arch", ["transformer", "attention"])
def test_attention_rows_sum_to_one_with_the_tokens_on_its_axes(workdir, client, arch):
    got = post(client, model=arch, text=[GERMAN[0]], max_len=6, attention=True, **SEARCH)
    layers, heads = (3, 2) if arch == "transformer" else (1, 1)
    target_vocab = load_vocabulary(workdir / "models" / arch / "vocab", "en")
    for found in got["translations"][0]["hypotheses"]:
        attention = found["attention"]
        assert attention["source"] == ["<sos>", *GERMAN[0].split(), "<eos>"]
        rows = [t for t in attention["target"] if t != "<eos>"]
        assert target_vocab.tokenizer.join(rows) == found["text"]  # the rows are its tokens
        assert len(attention["layers"]) == layers and len(attention["mean"]) == layers
        for layer, mean in zip(attention["layers"], attention["mean"], strict=True):
            assert len(layer) == heads
            for grid in [*layer, mean]:
                assert len(grid) == len(attention["target"])
                for row in grid:
                    assert len(row) == len(attention["source"])
                    assert sum(row) == pytest.approx(1, abs=1e-3)
            for row, *head_rows in zip(mean, *layer, strict=True):
                averaged = [sum(cells) / heads for cells in zip(*head_rows, strict=True)]
                assert row == pytest.approx(averaged, abs=1e-3)


def test_a_model_without_attention_answers_none_and_attention_is_only_when_asked(client):
    asked = post(client, model="lstm", text=[GERMAN[0]], max_len=6, attention=True)
    assert asked["translations"][0]["hypotheses"][0]["attention"] is None
    unasked = post(client, model="transformer", text=[GERMAN[0]], max_len=6, length_penalty=1)
    assert unasked["translations"][0]["hypotheses"][0]["attention"] is None


def test_models_describe_each_loaded_model(workdir, client):
    listed = {info["name"]: info for info in client.get("/models").json()}
    assert list(listed) == list(ARCHS)
    transformer = listed["transformer"]
    assert transformer["arch"] == "transformer" and transformer["engine"] == "pytorch"
    assert transformer["bleu"] == 12.5  # main's metrics beside models/
    assert listed["attention"]["bleu"] is None  # none there
    assert transformer["vocabulary"] == {"name": "words", "source_tokens": 16, "target_tokens": 17}
    assert (transformer["layers"], transformer["heads"], transformer["max_len"]) == (3, 2, 20)
    assert (listed["attention"]["layers"], listed["lstm"]["layers"]) == (1, 0)
    for arch, info in listed.items():
        model = ServedModel.load(workdir / "models" / arch, "pytorch").translator.model
        assert info["parameters"] == model.n_parameters()
    assert client.get("/health").json() == {"status": "ok"}


def test_model_info_is_what_the_model_states_through_its_interface(workdir, monkeypatch):
    """Layers, heads and the longest output come from `Seq2Seq.attention_layout` and
    `max_target_positions`, whatever the architecture: here an LSTM made to state some."""
    for arch in ARCHS:
        served = ServedModel.load(workdir / "models" / arch, "pytorch")
        layout = served.translator.model.attention_layout
        assert (served.info.layers, served.info.heads) == (layout or (0, 0))
    monkeypatch.setattr(LSTMSeq2Seq, "attention_layout", AttentionLayout(2, 5))
    monkeypatch.setattr(LSTMSeq2Seq, "max_target_positions", 7)
    info = ServedModel.load(workdir / "models/lstm", "pytorch").info
    assert (info.layers, info.heads, info.max_len) == (2, 5, 7)


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/explorer.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN: works offline
    for name in ("explorer.js", "explorer.css"):
        assert client.get(f"/static/{name}").status_code == 200


OK = {"model": "attention", "text": [GERMAN[0]]}
BAD = [
    ("{", 400, "the body is not valid JSON"),
    ("[1, 2]", 400, "the body must be a JSON object"),
    ("", 400, "the body must be a JSON object"),
    ({"text": ["x"]}, 422, "model: required"),
    ({"model": "attention"}, 422, "text: required"),
    ({**OK, "model": "gru"}, 404, "no model 'gru'; loaded: transformer, attention, lstm"),
    ({**OK, "model": "../models/lstm"}, 404, "no model '../models/lstm'"),
    ({**OK, "text": []}, 422, "text: list should have at least 1 item"),
    ({**OK, "text": "ein hund"}, 422, "text: input should be a valid list"),
    ({**OK, "text": ["a", 3]}, 422, "text[1]: input should be a valid string"),
    ({**OK, "text": ["a"] * 5}, 422, "text: at most 4 lines a request, got 5"),
    ({**OK, "text": ["a", "b" * 201]}, 422, "text[1]: at most 200 characters, got 201"),
    ({**OK, "text": ["ein \ud800"]}, 422, "text[0]: is not valid UTF-8 text"),
    ({**OK, "beam": 0}, 422, "beam: input should be greater than or equal to 1"),
    ({**OK, "beam": 65}, 422, "beam: input should be less than or equal to 64"),
    ({**OK, "beam": "five"}, 422, "beam: input should be a valid integer"),
    ({**OK, "beam": 2, "n_best": 3}, 422, "n_best: at most beam (2), got 3"),
    ({**OK, "n_best": 0}, 422, "n_best: input should be greater than or equal to 1"),
    ({**OK, "length_penalty": -1}, 422, "length_penalty: input should be greater than"),
    ({**OK, "max_len": 0}, 422, "max_len: input should be greater than or equal to 1"),
    ({**OK, "model": "transformer", "max_len": 21}, 422, "max_len: at most 20 for model"),
    ({**OK, "attention": "yes"}, 422, "attention: input should be a valid boolean"),
    ({**OK, "beam": "5"}, 422, "beam: input should be a valid integer"),
    ({**OK, "beam": 2.5}, 422, "beam: input should be a valid integer"),
    ({**OK, "beams": 3}, 422, "beams: extra inputs are not permitted"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD)
def test_bad_input_gets_a_4xx_with_one_line(client, body, status, message):
    content = body if isinstance(body, str) else json.dumps(body)
    headers = {"content-type": "application/json"}
    response = client.post("/translate", content=content, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"] and error["error"].startswith(message)
    assert "\n" not in error["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"), [("get", "/translate", 405), ("get", "/nowhere", 404)]
)
def test_a_wrong_path_or_method_gets_one_line_too(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status and list(response.json()) == ["error"]


class Counted:
    """An engine that counts its calls and the lines of each."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []
        self.src_vocab, self.max_source = engine.src_vocab, engine.max_source

    def translate(self, lines: list[str], settings: SearchSettings) -> list[list[Hypothesis]]:
        self.calls.append(len(lines))
        return self.engine.translate(lines, settings)

    def text(self, hypothesis: Hypothesis) -> str:
        return self.engine.text(hypothesis)


def test_a_body_over_the_cap_is_refused_before_it_is_read_whole(client):
    """413 by Content-Length, and for a body sent in chunks (no length) once they pass the
    cap; a body within the cap of the same shape is answered."""
    cap = LIMITS.max_body
    big = json.dumps({"model": "transformer", "text": ["ein hund"], "pad": "x" * cap})
    for response in (
        client.post("/translate", content=big, headers={"content-type": "application/json"}),
        client.post(
            "/translate",
            content=(big[i : i + 4096].encode() for i in range(0, len(big), 4096)),
            headers={"content-type": "application/json"},
        ),
    ):
        assert response.status_code == 413
        assert response.json() == {
            "error": f"the request body is over {cap} bytes; send fewer or shorter lines"
        }
    small = json.dumps({"model": "transformer", "text": ["ein hund"], "pad": "x" * 1000})
    response = client.post(
        "/translate", content=small, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and "pad" in response.json()["error"]  # read and parsed


def test_requests_that_arrive_together_are_translated_together(workdir, client):
    served = ServedModel.load(workdir / "models/attention", "pytorch")
    served.engine = counted = Counted(served.engine)
    requests = [[GERMAN[0]], [GERMAN[1], GERMAN[2]], ["ein hund"], [GERMAN[2]]]
    answers: list[dict] = [{}] * len(requests)
    with client_of([served], Limits(batch_window_ms=300)) as batching:
        start = threading.Barrier(len(requests))

        def send(i: int) -> None:
            start.wait()
            answers[i] = post(batching, model="attention", text=requests[i], max_len=6)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert counted.calls == [5]  # one call, every request's lines
    for lines, answer in zip(requests, answers, strict=True):
        alone = post(client, model="attention", text=lines, max_len=6)
        assert answer == alone


def test_the_command_refuses_bad_options_with_one_line(workdir):
    for args, message in [
        (("--model", "nowhere"), "error: nowhere/config.json not found\n"),
        (("--model", "models/lstm", "--port", "0"), "error: --port must be between 1 and"),
        (("--model", "models/lstm", "--batch-window-ms", "-1"), "error: --batch-window-ms"),
        (("--model", "models/lstm", "--host", "999.1.1.1"), "error: cannot listen on 999.1.1.1:"),
    ]:
        result = subprocess.run([str(SERVER), *args], cwd=workdir, capture_output=True, check=False)
        assert result.returncode == 1 and result.stdout == b""
        assert result.stderr.decode().startswith(message) and result.stderr.count(b"\n") == 1
    with socket.create_server(("127.0.0.1", 0)) as taken:  # a port another server listens on
        port = str(taken.getsockname()[1])
        args = ("--model", "models/lstm", "--port", port)
        result = subprocess.run([str(SERVER), *args], cwd=workdir, capture_output=True, check=False)
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode() == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use): choose another "
        "--port, or a --host of this machine\n"
    )
    word = translate(workdir, "serve")  # the word is a sentence like any other
    assert word.returncode == 0 and word.stdout.count(b"\n") == 1, word.stderr


# The explorer in a real browser: Debian's Chromium and its chromedriver (`make test` installs
# them), started as a closed network needs.
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(workdir: Path) -> Iterator[str]:
    """`translate-server` with two tiny models, on a free port of 127.0.0.1."""
    port = free_port()
    args = ["--model", "models/transformer", "--model", "models/attention"]
    process = subprocess.Popen(
        [str(SERVER), *args, "--port", str(port)],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=5)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"translate-server did not start: {process.stderr.read().decode()}")
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)


def chromium(profile: str):
    """A headless Chromium driven by Selenium, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            pytest.fail(f"no {path}: run `make browser` (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def explore(url: str, sentence: str, screenshot: Path) -> tuple[list[str], list[str], list[str]]:
    """The page at `url` translating `sentence` with its first model: the n-best texts, and
    the attention grid's column and row tokens; a screenshot of it in `screenshot`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as profile:
        driver = chromium(profile)
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#compare option[value]"))
            text = driver.find_element(By.ID, "text")
            text.clear()
            text.send_keys(sentence)
            driver.find_element(By.ID, "go").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "table.attention")) == 2)
            panel = driver.find_element(By.CSS_SELECTOR, ".panel")
            found = [e.text for e in panel.find_elements(By.CSS_SELECTOR, ".hypothesis .text")]
            grid = panel.find_element(By.CSS_SELECTOR, "table.attention")
            columns = [e.text for e in grid.find_elements(By.CSS_SELECTOR, "thead th")][1:]
            rows = [e.text for e in grid.find_elements(By.CSS_SELECTOR, "tbody th")]
            cells = grid.find_elements(By.CSS_SELECTOR, "tbody td")
            assert len(cells) == len(rows) * len(columns)
            driver.save_screenshot(str(screenshot))
        finally:
            driver.quit()
    return found, columns, rows


@pytest.mark.slow
def test_the_explorer_page_translates_and_draws_the_attention_grid(server, tmp_path):
    found, columns, rows = explore(server, GERMAN[0], tmp_path / "explorer.png")
    body = {"model": "transformer", "text": [GERMAN[0]], "beam": 5, "n_best": 3}
    request = urllib.request.Request(
        f"{server}/translate",
        json.dumps({**body, "attention": True}).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        want = json.load(response)["translations"][0]["hypotheses"]
    assert found == [h["text"] for h in want]
    assert columns == want[0]["attention"]["source"]
    assert rows == want[0]["attention"]["target"]
    assert (tmp_path / "explorer.png").read_bytes()[:4] == b"\x89PNG"
