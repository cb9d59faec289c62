"""Entry-point helper: a user's mistake ends a stage with one line, never a traceback."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from nmt import NMTError


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
        "`git checkout -- metrics logs && dvc checkout` restores the committed ones)"
    )


def run_stage(main: Callable[[], None], interrupted: str = STAGE_INTERRUPTED) -> None:
    """Run `main`; SIGTERM is treated like Ctrl-C, and both leave only complete files behind
    and end with `interrupted: <what now>`."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main()
    except NMTError as err:
        print(f"error: {err}{restore_advice()}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)
