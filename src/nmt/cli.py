"""Entry-point helper: a user's mistake ends a stage with one line, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from nmt import NMTError


def run_stage(main: Callable[[], None]) -> None:
    try:
        main()
    except NMTError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
