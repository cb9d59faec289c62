"""Entry-point helper: a user's mistake ends a stage with one line, never a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from nmt import NMTError


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


STAGE_INTERRUPTED = "files written so far are complete; rerun the stage to continue"


def run_stage(main: Callable[[], None], interrupted: str = STAGE_INTERRUPTED) -> None:
    """Run `main`; SIGTERM is treated like Ctrl-C, and both leave only complete files behind
    and end with `interrupted: <what now>`."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
    except NMTError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)
