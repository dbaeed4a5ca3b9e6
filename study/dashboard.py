"""optuna-dashboard for a run's studies, bound to localhost."""

from __future__ import annotations

import sys

from study.errors import UsageError
from study.storage import display_url, open_storage, parse_storage

__all__ = ["serve", "dashboard_url"]


def dashboard_url(host: str, port: int) -> str:
    """The address a browser opens (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/dashboard/"


def serve(run_dir: str | None, storage: str | None = None, *, host: str = "127.0.0.1",
          port: int = 8080, out=None) -> None:
    """Serve optuna-dashboard for the storage until interrupted.

    The URL is printed (and flushed) before the server starts, so scripts and tests can wait
    for it. The server binds to ``host`` only, 127.0.0.1 by default: the dashboard can edit
    notes and delete studies, so it must not be reachable from other machines unless asked.

    Raises:
        UsageError: a bad port, a storage that does not exist or cannot be opened, or a
            port already in use.
    """
    out = out or sys.stdout
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be in 1..65535, got {port}")
    if run_dir is not None:
        from study.run import Run

        run_dir = Run(run_dir).path  # UsageError when missing
    spec = parse_storage(storage, run_dir)
    # Read-only use: never create an empty database because of a typo.
    opened = open_storage(spec, must_exist=True)
    from optuna_dashboard import run_server

    print(f"optuna-dashboard for {display_url(spec.url)} at {dashboard_url(host, port)} "
          "(Ctrl-C to stop)", file=out, flush=True)
    try:
        run_server(opened, host=host, port=port)
    except OSError as e:
        raise UsageError(f"cannot listen on {host}:{port} ({e.strerror})") from None
