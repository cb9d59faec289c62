"""Entry-point helper: a user's mistake ends a stage with one line, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable

from nmt import MissingInput, NMTError
from nmt.config import available_archs
from nmt.paths import made_by


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


STAGE_INTERRUPTED = "files written so far are complete; rerun the stage to continue"


def restore_advice() -> str:
    """DVC deletes a stage's outputs before it runs it; a failed run leaves them missing."""
    stage = os.environ.get("DVC_STAGE")
    if not stage:
        return ""
    return (
        f" (DVC removed {stage}'s outputs before running it: once that is fixed, "
        "`git checkout -- metrics results logs && dvc checkout` restores the committed ones)"
    )


def run_stage(main: Callable[[], None], interrupted: str = STAGE_INTERRUPTED) -> None:
    """Run `main`; SIGTERM is treated like Ctrl-C, and both leave only complete files behind
    and end with `interrupted: <what now>`. The library's progress lines (`logging`, level
    INFO) go to standard output."""
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        main()
    except NMTError as err:
        stage = made_by(err.path) if isinstance(err, MissingInput) else None
        fix = f": run `dvc repro {stage}` first" if stage else ""
        print(f"error: {err}{fix}{restore_advice()}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        sys.exit(141)  # 128 + SIGPIPE


def stage_arch(description: str | None) -> str:
    """The architecture named on a per-architecture stage's command line."""
    return stage_item(description, "arch", available_archs())


def stage_item(description: str | None, what: str, choices: Iterable[str]) -> str:
    """The item (architecture, vocabulary) a `foreach` stage's command line names."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(what, choices=list(choices))
    return getattr(parser.parse_args(), what)
