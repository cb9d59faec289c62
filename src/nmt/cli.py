"""Entry-point helper: a user's mistake ends a stage with one line, never a traceback."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from nmt import NMTError


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_stage(main: Callable[[], None]) -> None:
    """Run `main`; SIGTERM is treated like Ctrl-C, and both leave only complete files behind."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
    except NMTError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(
            "interrupted: files written so far are complete; rerun the stage to continue",
            file=sys.stderr,
        )
        sys.exit(130)
