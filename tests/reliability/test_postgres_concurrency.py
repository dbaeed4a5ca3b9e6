"""Issue 6.2: the concurrency test of 6.1 against a real PostgreSQL server started here.

The server is a throwaway (``tests/reliability/pgserver.py``): initdb + pg_ctl in a temporary
directory, 127.0.0.1 on a free port, password authentication, stopped afterwards. Outside CI
the test is skipped (with the reason) when no PostgreSQL binaries are found; with ``CI`` set it
must run, and missing binaries fail it (``.ci/run`` installs Debian's ``postgresql``).
"""

from __future__ import annotations

import os

import pytest
import torch

from study.runner import run_study
from tests.reliability.helpers import check_concurrent_study, load, options
from tests.reliability.pgserver import find_bindir, pg_user, running_server


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def postgres():
    bindir = find_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in "
                     "/usr/lib/postgresql/*/bin; install Debian's 'postgresql' package")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("the psycopg driver is missing: pip install -e '.[postgres]'")
    user = pg_user()
    if user is None:
        _unavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")
    with running_server(bindir, user) as server:
        # What docs/running-at-scale.md tells a user to do: a role and a database for studies.
        server.sql("CREATE ROLE distill LOGIN PASSWORD 'distill-pw'")
        server.sql("CREATE DATABASE distill_study OWNER distill")
        yield server


@pytest.mark.slow
def test_four_workers_share_one_postgresql_database(postgres, tiny_run, capfd, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    url = postgres.url("distill_study", "distill", "distill-pw")
    status = run_study(options(tiny_run, name="pg40", storage=url, n_trials=40, workers=4,
                               epochs=2, max_train_examples=40, heartbeat=1, grace_period=20))
    out, err = capfd.readouterr()
    assert status == 0, err
    figures = check_concurrent_study(load(url, "pg40"), 40, 4, out + err)
    print(f"postgresql: {figures}")
    assert "study 'pg40': 40/40 trials finished" in out
    assert "distill-pw" not in out + err  # the password never reaches the output
    assert not (tiny_run / "studies.db").exists()  # nothing fell back to SQLite
