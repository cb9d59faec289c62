"""A cap on the size of an HTTP request's body, as ASGI middleware: a body over the cap is
refused with 413 before it is read whole, by its Content-Length or, when it comes in chunks,
as soon as they pass the cap, so no request makes the server hold or parse more than that."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


class BodyCap:
    def __init__(self, app: App, limit: int):
        self.app, self.limit = app, limit

    def refusal(self) -> JSONResponse:
        return JSONResponse(
            {"error": f"the request body is over {self.limit} bytes; send fewer or shorter lines"},
            status_code=413,
        )

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self.refusal()(scope, receive, send)
        messages, received = [], 0  # read here, up to the cap, then handed to the app
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.limit:
                return await self.refusal()(scope, receive, send)
            if not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
