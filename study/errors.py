"""Errors that the command line turns into a one-line message and exit status 2."""

from __future__ import annotations

__all__ = ["UsageError", "ArtifactError"]


class UsageError(Exception):
    """Bad input from the user: a wrong flag value, a missing file, an unknown name.

    The CLI prints ``distill-study: error: <message>`` and exits with status 2, with no
    traceback. Raise it *before* writing anything, so nothing half-written is left behind.
    """


class ArtifactError(UsageError):
    """A stored artifact (tokenized split, logits, student file) is corrupt, stale or foreign."""
