"""Requests translated together: lines decoded as one batch take little more time than one
line, so a server that waits a few milliseconds for more requests answers more of them.
The CPU work runs in a thread, one call at a time (torch already uses every core for one),
never on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from anyio import to_thread

Key = TypeVar("Key", bound=Hashable)  # what requests must share to be translated together
Result = TypeVar("Result")  # what one line gives
Done = TypeVar("Done")  # what work in the thread gives


@dataclass
class Group(Generic[Result]):
    lines: list[str] = field(default_factory=list)
    done: asyncio.Future[list[Result]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Batcher(Generic[Key, Result]):
    """`await batcher(key, lines)` is `run(key, lines)` in a thread; with a window, the lines
    of the requests with the same key that arrive within `window_s` seconds of the first go
    to `run` in one call, and the group stays open to more until its call begins."""

    def __init__(self, run: Callable[[Key, list[str]], list[Result]], window_s: float):
        self.run, self.window_s = run, window_s
        self.cpu = asyncio.Lock()  # the one thread that translates
        self.open: dict[Key, Group[Result]] = {}
        self.tasks: set[asyncio.Task[None]] = set()  # held, so that none is collected early

    async def in_thread(self, work: Callable[[], Done]) -> Done:
        """`work()` in the translating thread, after the calls before it."""
        async with self.cpu:
            return await to_thread.run_sync(work)

    async def __call__(self, key: Key, lines: list[str]) -> list[Result]:
        if not self.window_s:
            return await self.in_thread(lambda: self.run(key, lines))
        group = self.open.get(key)
        if group is None:
            group = self.open[key] = Group()
            task = asyncio.create_task(self._close(key, group))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        start = len(group.lines)
        group.lines.extend(lines)
        found = await asyncio.shield(group.done)  # one caller leaving cancels no other
        return found[start : start + len(lines)]

    async def _close(self, key: Key, group: Group[Result]) -> None:
        await asyncio.sleep(self.window_s)
        async with self.cpu:
            del self.open[key]  # later requests start the next group
            try:
                group.done.set_result(await to_thread.run_sync(self.run, key, group.lines))
            except Exception as err:  # each request of the group gets it
                group.done.set_exception(err)
