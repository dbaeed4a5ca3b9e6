"""Progress bars: tqdm on stderr, visible in logs too (sparser when stderr is not a terminal)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

__all__ = ["progress"]


def progress(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar on stderr.

    Shown in terminals (refreshed often) and in log files (every 30 s, so a long run leaves a
    readable trail). ``DISTILL_STUDY_PROGRESS=0`` hides every bar.
    """
    tty = sys.stderr.isatty()
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", 0.5 if tty else 30.0)
    kwargs.setdefault("dynamic_ncols", tty)
    if os.environ.get("DISTILL_STUDY_PROGRESS", "1") == "0":
        kwargs["disable"] = True
    else:
        kwargs.setdefault("disable", False)
    return tqdm(iterable, **kwargs)
