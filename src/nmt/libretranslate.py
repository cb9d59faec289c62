"""LibreTranslate's API over the served models, so that the clients of self-hosted translation
servers (libretranslatepy, deep-translator, SearXNG, editor plugins) use them unchanged.

POST /translate with `q` (a string, or a list of strings in a JSON body), `source` (a code, or
`auto` for the one source language the loaded models read), `target`, `format` (`text`; `html`
is refused), `alternatives` (that many more hypotheses of the n-best list) and `api_key`
(accepted, not checked), as a JSON body, a form body or a query string; GET /languages lists
each loaded language pair. A pair is translated by the first `--model` that reads it, with
its package's search and the server's limits; a line break in `q` splits it into lines,
translated each and joined again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nmt.api import MAX_BEAM
from nmt.languages import language_name

Translate = Callable[[tuple[str, str], list[str], int], Awaitable[list[list[str]]]]


class LibreRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # what other servers take (api_key, ...)

    q: str | list[str] = Field(min_length=1)
    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    format: str = "text"
    alternatives: int = Field(0, ge=0, le=MAX_BEAM - 1)


def form_fields(body: bytes, query: str) -> dict[str, str]:
    """A form body's fields over the query string's, as LibreTranslate reads them."""
    fields = dict(parse_qsl(query, keep_blank_values=True))
    fields |= dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return fields


def languages(pairs: list[tuple[str, str]]) -> list[dict[str, object]]:
    """GET /languages: every language of a loaded pair, with the targets it translates to."""
    codes = list(dict.fromkeys(code for pair in pairs for code in pair))
    return [
        {
            "code": code,
            "name": language_name(code),
            "targets": [target for source, target in pairs if source == code],
        }
        for code in codes
    ]


def checked(fields: dict[str, object]) -> LibreRequest:
    """The request, or a 400 naming its first problem as LibreTranslate words it."""
    for name in ("q", "source", "target"):
        if not fields.get(name):
            raise HTTPException(400, f"Invalid request: missing {name} parameter")
    try:
        return LibreRequest.model_validate(fields)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"][:1])
        raise HTTPException(400, f"Invalid request: {where}: {first['msg']}") from None


def source_of(request: LibreRequest, pairs: list[tuple[str, str]]) -> str:
    """The request's source language; `auto` is the one the loaded models read."""
    if request.format != "text":
        raise HTTPException(
            400, f"{request.format} format is not supported by this server: send format=text"
        )
    if request.source != "auto":
        return request.source
    sources = sorted({source for source, target in pairs if target == request.target})
    if len(sources) != 1:
        raise HTTPException(
            400,
            f"source auto: the models loaded for {request.target} read "
            f"{', '.join(sources) or 'no language'}; name the source language",
        )
    return sources[0]


async def answer(
    request: LibreRequest, pairs: list[tuple[str, str]], translate: Translate
) -> dict[str, object]:
    """LibreTranslate's answer: `translatedText` (a list for a list of `q`), `alternatives` when
    asked, `detectedLanguage` for `source: auto`."""
    source = source_of(request, pairs)
    pair = (source, request.target)
    if pair not in pairs:
        loaded = ", ".join(f"{s}->{t}" for s, t in pairs)
        raise HTTPException(400, f"{source}->{request.target} is not supported (loaded: {loaded})")
    texts = request.q if isinstance(request.q, list) else [request.q]
    lines = [text.split("\n") for text in texts]
    n_best = request.alternatives + 1
    found = iter(await translate(pair, [line for text in lines for line in text], n_best))
    ranked = [[next(found) for _ in text] for text in lines]  # per text, per line: n-best
    best = ["\n".join(line[0] if line else "" for line in text) for text in ranked]
    others = [
        ["\n".join(line[i] if i < len(line) else "" for line in text) for i in range(1, n_best)]
        for text in ranked
    ]
    single = not isinstance(request.q, list)
    out: dict[str, object] = {"translatedText": best[0] if single else best}
    if request.alternatives:
        out["alternatives"] = others[0] if single else others
    if request.source == "auto":
        detected = {"confidence": 100.0, "language": source}
        out["detectedLanguage"] = detected if single else [detected] * len(texts)
    return out
