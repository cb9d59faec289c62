"""`translate-server`: the trained models over HTTP (FastAPI on uvicorn), and at `/` the
attention explorer, a page that translates a sentence and shows what each model attends to.

translate-server --model models/transformer --model models/attention
curl -s localhost:8000/translate -H 'content-type: application/json' \
    -d '{"model": "transformer", "text": ["Ein Hund läuft."], "n_best": 2}'

A request names a model by its package folder's name, never by a path. Bad input gets a 4xx
with one line, `{"error": "..."}`; the translation runs in a thread (`nmt.batcher`).
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from nmt import NMTError, libretranslate
from nmt.api import (
    MAX_LEN,
    Attention,
    Found,
    Limits,
    ModelInfo,
    TranslateRequest,
    TranslateResponse,
    Translation,
    Vocab,
    checked_lines,
)
from nmt.batcher import Batcher
from nmt.body_cap import BodyCap
from nmt.cli import run_stage
from nmt.cross_attention import AttentionMaps, attention_maps
from nmt.engine_flags import add_engine_flags, export_beside
from nmt.paths import METRICS, MODELS
from nmt.search import Hypothesis, SearchSettings
from nmt.translator import Engine, Translator

STATIC = Path(__file__).parent / "static"


@dataclass
class ServedModel:
    """A package, named by its folder: our translator (its vocabularies, and the model that
    the explorer reads attention from) and the engine that translates."""

    translator: Translator
    engine: Engine
    info: ModelInfo

    @classmethod
    def load(cls, folder: Path, engine: str, compute_type: str = "float32") -> ServedModel:
        translator = Translator.load(folder)
        model = translator.model
        runs: Engine = translator
        export = export_beside(folder)
        if engine == "ctranslate2" and export.is_dir():
            from nmt.export import CTranslate2Translator  # the other servers need none of it

            runs = CTranslate2Translator.load(export, compute_type)
        layers, heads = model.attention_layout or (0, 0)
        longest = model.max_target_positions
        info = ModelInfo(
            name=folder.resolve().name,
            arch=translator.arch,
            engine="ctranslate2" if runs is not translator else "pytorch",
            vocabulary=Vocab(
                name=translator.config.vocab,
                source_tokens=len(translator.src_vocab),
                target_tokens=len(translator.trg_vocab),
            ),
            parameters=model.n_parameters(),
            layers=layers,
            heads=heads,
            max_len=MAX_LEN if longest is None else min(longest, MAX_LEN),
            bleu=main_bleu(folder.resolve(), translator.arch),
        )
        return cls(translator, runs, info)


def main_bleu(folder: Path, arch: str) -> float | None:
    """The test BLEU that the pipeline's metrics give a package where the pipeline left it:
    of the first test set, the one metrics/eval_<arch>.json holds."""
    if folder.parent.name != MODELS.name or folder.name != arch:
        return None
    path = folder.parent.parent / METRICS / f"eval_{arch}.json"
    try:
        (scores,) = json.loads(path.read_text(encoding="utf-8")).values()
        return float(scores["bleu"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def one_line(err: RequestValidationError) -> JSONResponse:
    """The first problem pydantic found, as `field: problem`; a body that is no JSON object
    at all gets a 400."""
    first = err.errors()[0]
    if first["type"] == "json_invalid":
        return error(400, "the body is not valid JSON")
    if len(first["loc"]) < 2:
        return error(400, "the body must be a JSON object")
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"][1:])
    message = "required" if first["type"] == "missing" else first["msg"]
    return error(422, f"{where[1:]}: {message[0].lower()}{message[1:]}")


def search_settings(request: TranslateRequest, served: ServedModel) -> SearchSettings:
    """The search the request asks of a model: its package's, with what the request says."""
    info, measured = served.info, served.translator.config.search_defaults
    max_len = min(measured.max_len, info.max_len) if request.max_len is None else request.max_len
    if max_len > info.max_len:
        raise NMTError(f"max_len: at most {info.max_len} for model {info.name!r}, got {max_len}")
    beam = measured.beam_size if request.beam is None else request.beam
    if request.n_best > beam:
        raise NMTError(f"n_best: at most beam ({beam}), got {request.n_best}")
    return measured.search(beam, request.length_penalty, max_len, n_best=request.n_best)


def rounded(maps: AttentionMaps) -> Attention:
    def grid(weights: torch.Tensor) -> list[list[float]]:
        return [[round(w, 4) for w in row] for row in weights.tolist()]

    return Attention(
        source=maps.source,
        target=maps.target,
        layers=[[grid(head) for head in layer] for layer in maps.layers],
        mean=[grid(layer.mean(0)) for layer in maps.layers],
    )


def translations(
    served: ServedModel,
    lines: list[str],
    found: list[list[Hypothesis]],
    settings: SearchSettings,
    attention: bool,
) -> list[Translation]:
    def one(line: str, hypothesis: Hypothesis) -> Found:
        maps = None
        if attention:
            maps = attention_maps(served.translator, line, hypothesis, settings.max_len)
        return Found(
            text=served.engine.text(hypothesis),
            score=hypothesis.score,
            attention=None if maps is None else rounded(maps),
        )

    return [
        Translation(source=line, hypotheses=[one(line, h) for h in n_best])
        for line, n_best in zip(lines, found, strict=True)
    ]


def create_app(models: list[ServedModel], limits: Limits) -> FastAPI:
    """The API and the explorer page over loaded models."""
    by_name = {served.info.name: served for served in models}
    if len(by_name) < len(models):
        raise NMTError("two --model folders have the same name: a request could not say which")

    def run(key: tuple[str, SearchSettings], lines: list[str]) -> list[list[Hypothesis]]:
        return by_name[key[0]].engine.translate(lines, key[1])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.batcher = Batcher(run, limits.batch_window_ms / 1000)  # on the serving loop
        yield

    app = FastAPI(title="nmt", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyCap, limit=limits.max_body)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return one_line(err)

    @app.exception_handler(NMTError)
    async def refused(_: Request, err: NMTError) -> JSONResponse:
        return error(422, str(err))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return error(err.status_code, str(err.detail))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/models")
    async def listed() -> list[ModelInfo]:
        return [served.info for served in models]

    pairs = list(dict.fromkeys(served.translator.config.langs for served in models))
    by_pair = {pair: next(s for s in models if s.translator.config.langs == pair) for pair in pairs}

    async def translate_lines(
        batcher: Batcher, pair: tuple[str, str], text: list[str], n_best: int
    ) -> list[list[str]]:
        """LibreTranslate's lines by the pair's model: its search, `n_best` hypotheses each."""
        served = by_pair[pair]
        measured = served.translator.config.search_defaults
        longest = min(measured.max_len, served.info.max_len)
        settings = measured.search(max(measured.beam_size, n_best), max_len=longest, n_best=n_best)
        try:
            lines = checked_lines(text, limits)
        except NMTError as err:
            raise HTTPException(400, str(err).replace("text", "q", 1)) from None
        todo = [line for line in lines if line]
        done = iter(await batcher((served.info.name, settings), todo) if todo else [])
        found = [next(done) if line else [] for line in lines]
        return [[served.engine.text(h) for h in n_best] for n_best in found]

    @app.get("/languages")
    async def listed_languages() -> list[dict[str, object]]:
        return libretranslate.languages(pairs)

    @app.post("/translate", response_model=None)
    async def translate(request: Request) -> TranslateResponse | dict[str, object]:
        raw, query = await request.body(), request.url.query
        parsed: object = None
        if "json" not in request.headers.get("content-type", "json"):  # a form, LibreTranslate's
            fields: dict[str, object] = {**libretranslate.form_fields(raw, query)}
        else:
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = None  # the native body's validation below says so
            fields = {**dict(parse_qsl(query)), **(parsed if isinstance(parsed, dict) else {})}
        batcher: Batcher = request.app.state.batcher
        if "q" in fields:  # LibreTranslate's; ours has `text`
            lt = libretranslate.checked(fields)

            async def by_model(pair: tuple[str, str], text: list[str], n: int) -> list[list[str]]:
                return await translate_lines(batcher, pair, text, n)

            return await libretranslate.answer(lt, pairs, by_model)
        if parsed is None:
            raise HTTPException(400, "the body is not valid JSON")
        if not isinstance(parsed, dict) or not raw:
            raise HTTPException(400, "the body must be a JSON object")
        try:
            body = TranslateRequest.model_validate(parsed)
        except ValidationError as err:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in err.errors()]
            ) from None
        served = by_name.get(body.model)
        if served is None:
            raise HTTPException(404, f"no model {body.model!r}; loaded: {', '.join(by_name)}")
        settings = search_settings(body, served)
        lines = checked_lines(body.text, limits)
        todo = [line for line in lines if line]
        done = iter(await batcher((body.model, settings), todo) if todo else [])
        found = [next(done) if line else [] for line in lines]
        if body.attention:  # a teacher-forced pass a hypothesis: CPU work, in the thread
            out = await batcher.in_thread(
                lambda: translations(served, lines, found, settings, attention=True)
            )
        else:
            out = translations(served, lines, found, settings, attention=False)
        return TranslateResponse(model=body.model, translations=out)

    @app.get("/", include_in_schema=False)
    async def explorer() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="translate-server",
        description="Serve trained models over HTTP: POST /translate, GET /models, GET "
        "/health, and at / the attention explorer.",
    )
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        required=True,
        metavar="DIR",
        help="a model package folder, once per model; requests name it by its folder's name",
    )
    add_engine_flags(
        parser,
        "ctranslate2: a model with an export (exports/<name> beside models/, which "
        "export@transformer writes) translates with it, the others with ours; the explorer's "
        "attention is ours",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        default=Limits.batch_window_ms,
        help="requests for a model with the same settings that arrive this close together "
        "are translated together; 0: each alone",
    )
    parser.add_argument("--max-lines", type=int, default=Limits.max_lines, help="per request")
    parser.add_argument(
        "--max-chars",
        type=int,
        default=Limits.max_chars,
        help="per line; with --max-lines it caps a request's body (413 above the cap)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        raise NMTError(f"--port must be between 1 and 65535, got {args.port}")
    if not 0 <= args.batch_window_ms <= 1000:
        raise NMTError(f"--batch-window-ms must be between 0 and 1000, got {args.batch_window_ms}")
    if min(args.max_lines, args.max_chars) < 1:
        raise NMTError("--max-lines and --max-chars must be >= 1")
    return args


def listening(host: str, port: int) -> socket.socket:
    """The server's socket, bound before any model loads: a port in use or a host that is not
    this machine's is one line at once, not a uvicorn error after the loading."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind((host, port))
        sock.listen()  # connections wait from here until the models are loaded
        return sock
    except OSError as err:
        sock.close()
        raise NMTError(
            f"cannot listen on {host}:{port} ({err.strerror}): choose another --port, "
            "or a --host of this machine"
        ) from None


def main() -> None:
    args = parse_args(sys.argv[1:])
    with listening(args.host, args.port) as sock:
        models = [ServedModel.load(f, args.engine, args.compute_type) for f in args.model]
        limits = Limits(args.max_lines, args.max_chars, args.batch_window_ms)
        config = uvicorn.Config(
            create_app(models, limits), host=args.host, port=args.port, log_level="info"
        )
        server = uvicorn.Server(config)
        where = f"[{args.host}]" if ":" in args.host else args.host
        logging.getLogger("uvicorn.error").info(  # uvicorn says it only of sockets it opens
            "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", where, args.port
        )
        server.run(sockets=[sock])
    if not server.started:
        raise NMTError("the server did not start; the lines above say why")


def cli() -> None:
    run_stage(main, "the server stopped")
