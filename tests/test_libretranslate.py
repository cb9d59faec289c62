"""LibreTranslate's API in `translate-server`: real clients of it get what `translate` prints."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from deep_translator import LibreTranslator
from fastapi.testclient import TestClient
from libretranslatepy import LibreTranslateAPI

from nmt.serve import Limits, ServedModel, create_app
from tests.conftest import GERMAN
from tests.test_serve import server  # noqa: F401  (a fixture: the server on a free port)
from tests.test_translate import TRANSLATE


def printed(workdir: Path, *args: str, stdin: str) -> list[str]:
    """What `translate` prints for the lines of `stdin` with the first served model."""
    result = subprocess.run(
        [str(TRANSLATE), "--model", "models/transformer", *args],
        cwd=workdir,
        input=stdin.encode(),
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().split("\n")[:-1]


@pytest.fixture(scope="module")
def client(workdir: Path) -> Iterator[TestClient]:
    models = [ServedModel.load(workdir / "models" / arch, "pytorch") for arch in ("transformer",)]
    with TestClient(create_app(models, Limits(max_lines=4, max_chars=200))) as client:
        yield client


def test_libretranslatepy_gets_what_translate_prints(workdir, server):  # noqa: F811
    api = LibreTranslateAPI(f"{server}/")  # a form body
    assert api.translate(GERMAN[0], "de", "en") == printed(workdir, stdin=f"{GERMAN[0]}\n")[0]
    assert api.languages() == [
        {"code": "de", "name": "German", "targets": ["en"]},
        {"code": "en", "name": "English", "targets": []},
    ]


def test_deep_translator_gets_what_translate_prints(workdir, server):  # noqa: F811
    client = LibreTranslator(source="de", target="en", api_key="any", custom_url=f"{server}/")
    assert client.translate(GERMAN[1]) == printed(workdir, stdin=f"{GERMAN[1]}\n")[0]  # query


def test_a_json_list_with_alternatives_and_auto_source(workdir, client):
    texts = [GERMAN[0], f"{GERMAN[1]}\n{GERMAN[2]}"]
    body = {"q": texts, "source": "auto", "target": "en", "alternatives": 2}
    answer = client.post("/translate", json=body).json()
    n_best = printed(workdir, "--n-best", "3", stdin="".join(f"{g}\n" for g in GERMAN[:3]))
    lines = [n_best[i : i + 3] for i in range(0, 9, 3)]  # three lines, three hypotheses each
    assert answer["translatedText"] == [lines[0][0], f"{lines[1][0]}\n{lines[2][0]}"]
    assert answer["alternatives"] == [
        lines[0][1:],
        [f"{lines[1][1]}\n{lines[2][1]}", f"{lines[1][2]}\n{lines[2][2]}"],
    ]
    assert answer["detectedLanguage"] == [{"confidence": 100.0, "language": "de"}] * 2
    form = client.post("/translate", data={"q": GERMAN[0], "source": "de", "target": "en"})
    assert form.json() == {"translatedText": lines[0][0]}  # a string for a string


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"q": "ein Hund", "target": "en"}, "Invalid request: missing source parameter"),
        ({"q": "", "source": "de", "target": "en"}, "Invalid request: missing q parameter"),
        ({"q": "ein Hund", "source": "de", "target": "fr"}, "de->fr is not supported"),
        ({"q": "ein Hund", "source": "de", "target": "en", "format": "html"}, "html format"),
        ({"q": ["a", "b", "c", "d", "e"], "source": "de", "target": "en"}, "q: at most 4 lines"),
        ({"q": "x" * 201, "source": "de", "target": "en"}, "q[0]: at most 200 characters"),
        ({"q": "a", "source": "de", "target": "en", "alternatives": -1}, "alternatives"),
    ],
)
def test_bad_requests_get_400_and_one_line(client, body, message):
    response = client.post("/translate", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error
