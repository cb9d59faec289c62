"""What `translate-server` answers and is asked (`nmt.serve`): the HTTP API's bodies as pydantic
models, checked on the way in and documented by their fields, and the limits a request is held
to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nmt import NMTError

MAX_BEAM, MAX_LEN = 64, 512  # the widest and longest search a request may ask for


class Vocab(BaseModel):
    name: str  # its name in params.yaml (words, subwords)
    source_tokens: int
    target_tokens: int


class ModelInfo(BaseModel):
    name: str
    arch: str
    engine: Literal["pytorch", "ctranslate2"]
    vocabulary: Vocab
    parameters: int
    layers: int  # of the attention the explorer shows: 0 where the model has none
    heads: int
    max_len: int  # the longest output a request may ask of it
    bleu: float | None  # sacreBLEU on the first test set, from the metrics beside models/


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is no beam size

    model: str
    text: list[str] = Field(min_length=1)
    # Unset: as the model's evaluation decoded (its package's decoding.json)
    beam: int | None = Field(None, ge=1, le=MAX_BEAM)
    n_best: int = Field(1, ge=1, le=MAX_BEAM)
    length_penalty: float | None = Field(None, ge=0, le=10)
    max_len: int | None = Field(None, ge=1, le=MAX_LEN)  # and at most the model's limit
    attention: bool = False


class Attention(BaseModel):
    source: list[str]  # the grid's columns
    target: list[str]  # its rows
    layers: list[list[list[list[float]]]]  # [layer][head][row][column]
    mean: list[list[list[float]]]  # [layer][row][column]: the mean over heads


class Found(BaseModel):
    text: str
    score: float  # log-probability of the tokens and the final <eos>
    attention: Attention | None = None  # when asked, and the model has attention


class Translation(BaseModel):
    source: str
    hypotheses: list[Found]  # best first; none for an empty line


class TranslateResponse(BaseModel):
    model: str
    translations: list[Translation]


@dataclass(frozen=True)
class Limits:
    max_lines: int = 64  # lines per request
    max_chars: int = 1000  # characters per line
    batch_window_ms: float = 5.0  # 0: each request translated alone

    @property
    def max_body(self) -> int:
        """Bytes a request may send: every line at its longest, each character JSON-escaped
        at its widest (12 bytes: a surrogate pair), and room for the other fields."""
        return self.max_lines * self.max_chars * 12 + 65536


def checked_lines(text: list[str], limits: Limits) -> list[str]:
    """The lines stripped, as `translate` reads them, within the server's limits."""
    if len(text) > limits.max_lines:
        raise NMTError(f"text: at most {limits.max_lines} lines a request, got {len(text)}")
    for number, line in enumerate(text):
        if len(line) > limits.max_chars:
            raise NMTError(
                f"text[{number}]: at most {limits.max_chars} characters, got {len(line)}"
            )
        try:  # JSON may spell a lone surrogate ("\ud800"), which is no text
            line.encode("utf-8")
        except UnicodeEncodeError:
            raise NMTError(f"text[{number}]: is not valid UTF-8 text") from None
    return [line.strip() for line in text]
