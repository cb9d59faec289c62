"""The batching window: requests with the same key that arrive together go to one call, each
gets its own lines' results, and the calls run off the event loop, one at a time."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from nmt.batcher import Batcher


class Recorder:
    """A `run` that records its calls, and which thread ran them."""

    def __init__(self, seconds: float = 0.0):
        self.calls: list[tuple[str, list[str]]] = []
        self.threads: set[int] = set()
        self.seconds, self.running, self.most = seconds, 0, 0

    def __call__(self, key: str, lines: list[str]) -> list[str]:
        self.running += 1
        self.most = max(self.most, self.running)
        self.calls.append((key, list(lines)))
        self.threads.add(threading.get_ident())
        time.sleep(self.seconds)
        self.running -= 1
        if "boom" in lines:
            raise ValueError("boom")
        return [f"{key}:{line}" for line in lines]


async def together(batcher: Batcher, requests: list[tuple[str, list[str]]]) -> list:
    return await asyncio.gather(
        *(batcher(key, lines) for key, lines in requests), return_exceptions=True
    )


REQUESTS = [("a", ["1", "2"]), ("a", ["3"]), ("b", ["4"]), ("a", ["5", "6"])]


def test_requests_within_the_window_are_one_call_per_key():
    run = Recorder()
    answers = asyncio.run(together(Batcher(run, window_s=0.05), REQUESTS))
    assert answers == [["a:1", "a:2"], ["a:3"], ["b:4"], ["a:5", "a:6"]]
    assert sorted(run.calls) == [("a", ["1", "2", "3", "5", "6"]), ("b", ["4"])]
    assert threading.get_ident() not in run.threads  # never on the event loop


def test_without_a_window_each_request_is_a_call_of_its_own():
    run = Recorder(seconds=0.01)
    answers = asyncio.run(together(Batcher(run, window_s=0), REQUESTS))
    assert answers == [["a:1", "a:2"], ["a:3"], ["b:4"], ["a:5", "a:6"]]
    assert len(run.calls) == 4 and run.most == 1  # one at a time
    assert threading.get_ident() not in run.threads


def test_a_group_stays_open_while_it_waits_for_the_thread():
    """Requests that arrive while a call runs join the next group, whatever the window."""

    async def main(batcher: Batcher) -> list:
        first = asyncio.create_task(batcher("a", ["1"]))
        await asyncio.sleep(0.05)  # the first call runs (0.5 s)
        later = []
        for n in range(2, 6):
            later.append(asyncio.create_task(batcher("a", [str(n)])))
            await asyncio.sleep(0.03)  # each past the 10 ms window of the one before
        return [await first, *[await task for task in later]]

    run = Recorder(seconds=0.5)
    assert asyncio.run(main(Batcher(run, window_s=0.01))) == [[f"a:{n}"] for n in range(1, 6)]
    assert run.calls == [("a", ["1"]), ("a", ["2", "3", "4", "5"])]


def test_a_failed_call_fails_each_request_of_its_group_and_no_other():
    run = Recorder()
    answers = asyncio.run(
        together(Batcher(run, window_s=0.05), [("a", ["1"]), ("a", ["boom"]), ("b", ["2"])])
    )
    assert [type(a) for a in answers[:2]] == [ValueError, ValueError]
    assert answers[2] == ["b:2"]


@pytest.mark.parametrize("window_s", [0, 0.05])
def test_the_work_after_a_call_waits_for_the_thread_too(window_s):
    run = Recorder(seconds=0.3)

    async def main() -> list:
        batcher = Batcher(run, window_s)
        call = asyncio.create_task(batcher("a", ["1"]))
        await asyncio.sleep(window_s + 0.1)  # the call has begun
        after = await batcher.in_thread(lambda: (len(run.calls), run.running))
        return [after, await call]

    assert asyncio.run(main()) == [(1, 0), ["a:1"]]  # it ran after the call, not beside it
